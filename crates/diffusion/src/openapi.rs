//! The OpenAPI 3.1 description served at `/openapi.json`, written by hand next to the
//! handlers it describes (no code generator for one small API).

use serde_json::{json, Value};

use super::request::{MAX_COUNT, MAX_SIDE, MAX_STEPS, SIDE_STEP};

pub fn description() -> Value {
    let error = json!({ "$ref": "#/components/schemas/ErrorBody" });
    let job_id = json!({
        "name": "id", "in": "path", "required": true, "schema": { "type": "string" }
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Switchyard image API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Local image generation with stable-diffusion.cpp. Loopback only; requests with a non-local Host or Origin get 403. When an API key is set, send `Authorization: Bearer <key>` (not needed for /health and /openapi.json)."
        },
        "servers": [{ "url": "http://127.0.0.1:8081" }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "GenerationRequest": {
                    "type": "object",
                    "required": ["prompt"],
                    "properties": {
                        "prompt": { "type": "string" },
                        "negative_prompt": { "type": "string", "default": "" },
                        "width": { "type": "integer", "multipleOf": SIDE_STEP, "minimum": SIDE_STEP, "maximum": MAX_SIDE, "default": 512 },
                        "height": { "type": "integer", "multipleOf": SIDE_STEP, "minimum": SIDE_STEP, "maximum": MAX_SIDE, "default": 512 },
                        "steps": { "type": "integer", "minimum": 1, "maximum": MAX_STEPS, "default": 20 },
                        "cfg_scale": { "type": "number", "minimum": 0, "maximum": 30, "default": 7.0 },
                        "sampler": { "type": ["string", "null"], "description": "one of the binary's --sampling-method values" },
                        "scheduler": { "type": ["string", "null"], "description": "one of the binary's --scheduler values" },
                        "seed": { "type": ["integer", "null"], "description": "null or negative: random; image i gets seed + i" },
                        "count": { "type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 1 },
                        "overrides": {
                            "type": "object",
                            "properties": {
                                "clip_on_cpu": { "type": ["boolean", "null"] },
                                "vae_on_cpu": { "type": ["boolean", "null"] },
                                "vae_tiling": { "type": ["boolean", "null"] }
                            }
                        }
                    }
                },
                "Progress": {
                    "type": "object",
                    "properties": {
                        "stage": { "enum": ["queued", "loading", "sampling", "decoding", "saving", "done"] },
                        "step": { "type": "integer" },
                        "total_steps": { "type": "integer" },
                        "image": { "type": "integer", "description": "1-based image being made" },
                        "images": { "type": "integer" },
                        "percent": { "type": "number" },
                        "seconds_per_step": { "type": ["number", "null"] }
                    }
                },
                "Job": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string" },
                        "status": { "enum": ["pending", "running", "complete", "error", "cancelled"] },
                        "progress": { "$ref": "#/components/schemas/Progress" },
                        "eta_seconds": { "type": ["number", "null"], "description": "seconds left by sd's step timing, while sampling" },
                        "queue_position": { "type": ["integer", "null"] },
                        "result": {
                            "type": ["object", "null"],
                            "properties": {
                                "images": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "image": { "type": "string", "contentEncoding": "base64", "contentMediaType": "image/png" },
                                            "seed": { "type": "integer" },
                                            "width": { "type": "integer" },
                                            "height": { "type": "integer" }
                                        }
                                    }
                                },
                                "time_ms": { "type": "integer" }
                            }
                        },
                        "error": { "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/Error" }] }
                    }
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "code": { "type": "string", "examples": ["GENERATION_FAILED", "QUEUE_FULL", "INVALID_INPUT", "NOT_FOUND", "RESULT_EXPIRED", "TIMED_OUT"] },
                        "message": { "type": "string" },
                        "suggestion": { "type": "string" },
                        "details": {
                            "type": ["object", "null"],
                            "properties": {
                                "exit": { "type": "string" },
                                "exit_code": { "type": ["integer", "null"] },
                                "stderr": { "type": "array", "items": { "type": "string" }, "description": "sd's last 20 stderr lines" },
                                "out_of_memory": { "type": "boolean" }
                            }
                        }
                    }
                },
                "ErrorBody": { "type": "object", "properties": { "error": { "$ref": "#/components/schemas/Error" } } }
            }
        },
        "security": [{}, { "bearer": [] }],
        "paths": {
            "/health": {
                "get": {
                    "summary": "Whether the server is up and busy",
                    "security": [],
                    "responses": { "200": { "description": "up", "content": { "application/json": { "schema": {
                        "type": "object",
                        "properties": { "status": { "const": "ok" }, "busy": { "type": "boolean" }, "runner": { "enum": ["cli", "server"] } }
                    } } } } }
                }
            },
            "/v1/images/generations": {
                "post": {
                    "summary": "Queue a generation",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/GenerationRequest" } } } },
                    "responses": {
                        "202": { "description": "queued", "content": { "application/json": { "schema": { "type": "object", "properties": { "id": { "type": "string" } } } } } },
                        "400": { "description": "invalid request", "content": { "application/json": { "schema": error } } },
                        "401": { "description": "API key missing or wrong" },
                        "403": { "description": "non-local Host or Origin" },
                        "429": { "description": "queue full; see Retry-After", "content": { "application/json": { "schema": error } } }
                    }
                }
            },
            "/v1/images/generations/{id}": {
                "parameters": [job_id],
                "get": {
                    "summary": "A job's status, progress and result",
                    "responses": {
                        "200": { "description": "the job", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Job" } } } },
                        "404": { "description": "unknown (NOT_FOUND), or its result no longer kept (RESULT_EXPIRED: after 15 minutes, or once newer results need the memory)", "content": { "application/json": { "schema": error } } }
                    }
                },
                "delete": {
                    "summary": "Cancel a job (a running one stops its sd process)",
                    "responses": {
                        "200": { "description": "cancelled or cancelling" },
                        "404": { "description": "unknown or expired", "content": { "application/json": { "schema": error } } }
                    }
                }
            },
            "/v1/images/generations/{id}/images/{index}": {
                "parameters": [job_id, {
                    "name": "index", "in": "path", "required": true,
                    "schema": { "type": "integer", "minimum": 0 }, "description": "0-based, in the order of result.images"
                }],
                "get": {
                    "summary": "One image of a complete job as its PNG file",
                    "responses": {
                        "200": { "description": "the image", "content": { "image/png": { "schema": { "type": "string", "contentMediaType": "image/png" } } } },
                        "404": { "description": "unknown job, no such image (or the job is not complete), or its result no longer kept (RESULT_EXPIRED)", "content": { "application/json": { "schema": error } } }
                    }
                }
            }
        }
    })
}
