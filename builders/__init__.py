"""svit builders: Visual Genome / COCO annotations -> prompts -> any OpenAI-compatible LLM -> validated SVIT records.

Pipeline (DESIGN.md §7): :mod:`annotations` + :mod:`coco` -> :mod:`serializer` -> :mod:`prompts` ->
:mod:`openai_client` (with :mod:`ratelimit`, :mod:`cache`, :mod:`batch`, :mod:`cost`) -> :mod:`parsers` ->
:mod:`validators` -> :mod:`output`. :mod:`pipeline` wires them; the LLM is injected (:mod:`llm`).
"""
