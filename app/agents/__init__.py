"""The LLM agents (dapr-agents DurableAgents): a triage agent and an expert agent, run as child
workflows of the ticket workflow when an LLM is configured.

Importing dapr_agents takes seconds: only `registry.register_agents` (LLM mode, at startup)
and the structuring activities import it; everything the workflow body needs is light.
"""
