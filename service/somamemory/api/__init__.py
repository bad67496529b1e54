"""The HTTP API: routes, their request and response schemas, auth and error mapping."""
