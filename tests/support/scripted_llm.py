"""A small scripted OpenAI-compatible server for tests: answers POST /v1/chat/completions with
queued replies (text or tool calls), records every request, and can be told to fail. Reached by
the real openai client and by daprd's conversation.openai component."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedLLM:
    def __init__(self, port: int = 0, default_text: str = "Scripted reply."):
        self.default_text = default_text
        self.replies: deque[dict] = deque()
        self.requests: list[dict] = []
        self.failures_left = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ScriptedLLM":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- scripting -------------------------------------------------------------------------
    def reply_text(self, text: str) -> None:
        self.replies.append({"role": "assistant", "content": text})

    def reply_tool_call(self, name: str, arguments: dict, call_id: str | None = None) -> None:
        call_id = call_id or f"call_{len(self.replies)}_{name}"
        self.replies.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}]})

    def fail_next(self, count: int) -> None:
        self.failures_left = count

    def user_messages(self) -> list[str]:
        texts = []
        for request in self.requests:
            for message in request.get("messages", []):
                if message.get("role") == "user":
                    content = message.get("content")
                    texts.append(content if isinstance(content, str) else json.dumps(content))
        return texts

    # -- server ----------------------------------------------------------------------------
    def _next(self, request: dict) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            if self.failures_left > 0:
                self.failures_left -= 1
                return 500, {"error": {"message": "scripted failure", "type": "server_error"}}
            message = self.replies.popleft() if self.replies else {"role": "assistant",
                                                                    "content": self.default_text}
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }

    def _handler(self):
        llm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    status, payload = 404, {"error": {"message": f"no route {self.path}"}}
                else:
                    status, payload = llm._next(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # keep test output clean
                pass

        return Handler
