"""The app API's OpenAPI 3.1 document, served at /api/openapi.json."""

from __future__ import annotations

from contract import features

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_TAGS = {"type": "array", "items": {"type": "string", "maxLength": features.MAX_TAG_CHARS}}
_SCORED = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["tag", "score"],
        "properties": {"tag": {"type": "string"}, "score": {"type": "number"}},
    },
}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    return {str(c): {"description": "error", **_json(_ERROR)} for c in codes}


# Who may call what (serving/app/api.py's route table is the rule; this documents it).
_SECURITY = {
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a token from `python -m serving.feedback token create`",
            },
            "iap": {
                "type": "apiKey",
                "in": "header",
                "name": "x-goog-iap-jwt-assertion",
                "description": "set by Identity-Aware Proxy on GKE",
            },
        }
    },
}
_ANYONE = {"security": [{}, {"bearer": []}, {"iap": []}], "x-role": "anyone"}
_REVIEWER = {"security": [{"bearer": []}, {"iap": []}], "x-role": "reviewer"}
_OPERATOR = {"security": [{"bearer": []}, {"iap": []}], "x-role": "operator"}


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "StackOverflow tagger", "version": "1"},
    "paths": {
        "/api/predict": {
            "post": {
                "summary": "Tags for a question title",
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["title"],
                            "properties": {
                                "title": {
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": features.MAX_TITLE_CHARS,
                                }
                            },
                        }
                    ),
                },
                "responses": {
                    "200": {
                        "description": "tags",
                        **_json(
                            {
                                "type": "object",
                                "required": [
                                    "title",
                                    "tags",
                                    "candidates",
                                    "threshold",
                                    "model_version",
                                ],
                                "properties": {
                                    "title": {"type": "string"},
                                    "tags": _SCORED,
                                    "candidates": _SCORED,
                                    "threshold": {"type": "number"},
                                    "model_version": {"type": "string"},
                                },
                            }
                        ),
                    },
                    **_errors(400, 401, 403, 408, 413, 415, 429, 503),
                },
                **_ANYONE,
            }
        },
        "/api/feedback": {
            "post": {
                "summary": "Store corrected tags",
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["title", "actual"],
                            "properties": {
                                "title": {
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": features.MAX_TITLE_CHARS,
                                },
                                "predicted": _TAGS,
                                "actual": {**_TAGS, "minItems": 1, "maxItems": features.MAX_TAGS},
                                "model_version": {"type": ["string", "integer"]},
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {
                        "description": "stored durably",
                        **_json(
                            {
                                "type": "object",
                                "required": ["id", "status", "actual"],
                                "properties": {
                                    "id": {"type": "integer"},
                                    "status": {
                                        "enum": [
                                            "accepted",
                                            "pending_review",
                                            "rejected",
                                            "duplicate",
                                        ]
                                    },
                                    "actual": _TAGS,
                                    "duplicate_of": {"type": "integer"},
                                    "review": _TAGS,
                                },
                            }
                        ),
                    },
                    **_errors(400, 401, 403, 408, 413, 415, 429, 503),
                },
                **_ANYONE,
            }
        },
        "/api/tags": {
            "get": {
                "summary": "Tags the model knows",
                "responses": {"200": {"description": "tags"}},
                **_ANYONE,
            }
        },
        "/api/whoami": {
            "get": {
                "summary": "The caller's subject and role",
                "responses": {"200": {"description": "identity"}, **_errors(401)},
                **_ANYONE,
            }
        },
        "/api/review/tags": {
            "get": {
                "summary": "Unknown tags and their review status, one page at a time",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "the `next` of the previous page",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                ],
                "responses": {
                    "200": {"description": "a page of the queue"},
                    **_errors(400, 401, 403),
                },
                **_REVIEWER,
            }
        },
        "/api/review/tags/{tag}:{action}": {
            "post": {
                "summary": "Accept (optionally as alias_of a known tag) or reject a tag",
                "parameters": [
                    {"name": "tag", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "action",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["accept", "reject"]},
                    },
                ],
                "responses": {
                    "200": {"description": "decided"},
                    **_errors(400, 401, 403, 404, 415),
                },
                **_REVIEWER,
            }
        },
        "/api/sources": {
            "get": {
                "summary": "Sources of feedback with their counts",
                "responses": {"200": {"description": "sources"}, **_errors(401, 403)},
                **_OPERATOR,
            }
        },
        "/api/sources/{source}:withdraw": {
            "post": {
                "summary": "Take all of one source's samples out of training",
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["reason"],
                            "properties": {"reason": {"type": "string", "minLength": 1}},
                        }
                    ),
                },
                "responses": {
                    "200": {"description": "withdrawn"},
                    **_errors(400, 401, 403, 404, 415),
                },
                **_OPERATOR,
            }
        },
        "/api/rollout": {
            "get": {
                "summary": "The release: stable, canary, stage, versions, events",
                "responses": {"200": {"description": "the release"}, **_errors(401, 403)},
                **_OPERATOR,
            }
        },
        "/api/rollout:{action}": {
            "post": {
                "summary": "Promote the canary now, or roll it back (with a reason) and reject it",
                "parameters": [
                    {
                        "name": "action",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["promote", "rollback"]},
                    }
                ],
                "requestBody": {
                    "required": False,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"reason": {"type": "string", "minLength": 1}},
                        }
                    ),
                },
                "responses": {
                    "200": {"description": "the release after the action"},
                    **_errors(400, 401, 403, 409, 415),
                },
                **_OPERATOR,
            }
        },
        "/api/health": {
            "get": {
                "summary": "The service is alive",
                "responses": {"200": {"description": "alive"}},
            }
        },
        "/api/ready": {
            "get": {
                "summary": "The model server and the feedback store answer",
                "responses": {"200": {"description": "ready"}, **_errors(503)},
            }
        },
    },
    **_SECURITY,
}
