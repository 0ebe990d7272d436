"""The HTTP layer of online serving: the FastAPI app and its guard (``ingress``), API keys and route scopes
(``auth``), request and response bodies (``schemas``), and a small client of the API (``client``)."""
