"""The support console at /console: server-rendered pages (Jinja2, htmx) for engineers
(inbox, claims, ticket page, decisions) and operators (workflows, history, actions, system)."""
