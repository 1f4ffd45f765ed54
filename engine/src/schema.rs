//! The JSON Schema of workflow files (`weft schema`), for editors.
//!
//! It describes the same grammar [`crate::load`] parses; a test checks every example
//! workflow against it. Semantic rules (routes to existing tasks, cycles, templates) are
//! beyond JSON Schema and stay with `weft validate`.

use serde_json::{Value, json};

use crate::model::TRIGGER_TYPES;

/// The schema, optionally listing the registered action names for autocompletion.
pub fn workflow_schema<'a>(actions: impl IntoIterator<Item = &'a str>) -> Value {
    let actions: Vec<&str> = actions.into_iter().collect();
    let duration = json!({
        "description": "A duration: 500ms, 30s, 5m, 2h, 1d, 1h30m, or a number of seconds",
        "oneOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|sec|secs|m|min|mins|h|hr|hrs|d|day|days))+$|^[0-9]+$" }
        ]
    });
    let template = json!({
        "type": "string",
        "pattern": "\\{\\{|\\{%",
        "description": "A Jinja template, e.g. \"{{ RESULT.ok }}\""
    });
    let name = json!({ "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" });
    let action = if actions.is_empty() {
        json!({ "type": "string", "description": "A registered action (`weft actions list`)" })
    } else {
        json!({
            "type": "string",
            "description": "A registered action (`weft actions list`)",
            "anyOf": [ { "enum": actions }, { "pattern": "^[a-z0-9_]+(\\.[a-z0-9_]+)+$" } ]
        })
    };
    let integration = json!({
        "description": "Integration instance to use: a name, or a mapping of integration kind to instance name",
        "oneOf": [
            { "type": "string" },
            { "type": "object", "additionalProperties": { "type": "string" } }
        ]
    });
    let fragments = Fragments {
        duration,
        template,
        name,
        integration,
    };
    let Fragments { duration, name, .. } = &fragments;
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://weft.dev/schema/workflow-v1.json",
        "title": "weft workflow",
        "description": "A weft workflow: typed inputs, tasks that call actions, routes between them, output and triggers.",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "tasks"],
        "properties": {
            "version": { "const": 1, "description": "Language version (1)" },
            "name": { "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$", "description": "Unique workflow name" },
            "description": { "type": "string" },
            "timeout": duration,
            "input": {
                "description": "Typed inputs, read as CTX.<name> (or, Orquesta-style, a list of names and `name: default` entries)",
                "anyOf": [
                    { "type": "null" },
                    { "type": "object", "propertyNames": name, "additionalProperties": { "$ref": "#/definitions/input" } },
                    { "type": "array", "items": { "oneOf": [ name, { "type": "object", "minProperties": 1, "maxProperties": 1 } ] } }
                ]
            },
            "vars": {
                "description": "Values computed once at start, in order; read as CTX.<name>",
                "anyOf": [ { "type": ["object", "null"], "propertyNames": name }, { "$ref": "#/definitions/pairs" } ]
            },
            "tasks": {
                "type": "object",
                "description": "The tasks; start tasks are those no route points to",
                "minProperties": 1,
                "propertyNames": { "type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_-]*$" },
                "additionalProperties": { "$ref": "#/definitions/task" }
            },
            "output": { "description": "Rendered when the execution ends", "anyOf": [ { "type": ["object", "null"] }, { "$ref": "#/definitions/pairs" } ] },
            "triggers": { "type": ["array", "null"], "items": { "$ref": "#/definitions/trigger" } },
            "concurrency": {
                "description": "How many executions may run at once across every process sharing the store; the others queue, oldest first",
                "oneOf": [
                    { "type": "integer", "minimum": 1 },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["limit"],
                        "properties": {
                            "limit": { "type": "integer", "minimum": 1 },
                            "key": { "type": "string", "description": "Rendered at creation (like vars); the limit applies per distinct value, e.g. \"{{ ORG.id }}\"" }
                        }
                    }
                ]
            }
        },
        "definitions": {
            "pairs": {
                "description": "Orquesta style: a list of one-key mappings",
                "type": "array",
                "items": { "type": "object", "minProperties": 1, "maxProperties": 1 }
            },
            "input": {
                "oneOf": [
                    { "$ref": "#/definitions/inputType" },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "type": { "$ref": "#/definitions/inputType" },
                            "required": { "type": "boolean" },
                            "default": {},
                            "description": { "type": "string" },
                            "label": { "type": "string" },
                            "enum": { "type": "array" },
                            "secret": { "type": "boolean", "description": "Redacted in stored data and logs" }
                        }
                    }
                ]
            },
            "inputType": {
                "enum": ["string", "str", "integer", "int", "number", "float", "boolean", "bool", "object", "dict", "map", "array", "list", "any"]
            },
            "task": task_schema(&fragments, action),
            "route": route_schema(&fragments),
            "trigger": trigger_schema(&fragments),
        }
    })
}

/// Schema fragments several definitions share.
struct Fragments {
    duration: Value,
    template: Value,
    name: Value,
    integration: Value,
}

/// `definitions.task`: one task, calling `action` (the action-name schema).
fn task_schema(f: &Fragments, action: Value) -> Value {
    let Fragments {
        duration,
        template,
        integration,
        ..
    } = f;
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["action"],
        "properties": {
            "action": action,
            "description": { "type": "string" },
            "input": { "type": ["object", "null"], "description": "The action's parameters (`weft actions show NAME`)" },
            "next": { "type": ["array", "null"], "items": { "$ref": "#/definitions/route" } },
            "join": {
                "description": "`all`: wait for every inbound route; N: for any N",
                "oneOf": [ { "const": "all" }, { "type": "integer", "minimum": 1 } ]
            },
            "with": {
                "description": "Run once per item; item() in templates",
                "oneOf": [
                    template,
                    { "type": "array" },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["items"],
                        "properties": {
                            "items": { "oneOf": [ template, { "type": "array" } ] },
                            "concurrency": { "type": "integer", "minimum": 1 }
                        }
                    }
                ]
            },
            "retry": {
                "oneOf": [
                    { "type": "integer", "minimum": 0 },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["count"],
                        "properties": {
                            "count": { "type": "integer", "minimum": 0 },
                            "delay": duration,
                            "backoff": { "type": "number", "minimum": 1 },
                            "max_delay": duration,
                            "when": template
                        }
                    }
                ]
            },
            "timeout": duration,
            "delay": duration,
            "transition_mode": { "enum": ["all", "first", "follow_all", "follow_first"] },
            "run_as_org": { "description": "Run in a child org's context (id or name; may be a template)" },
            "integration": integration
        }
    })
}

/// `definitions.route`: one entry of a task's `next`.
fn route_schema(f: &Fragments) -> Value {
    let Fragments { template, name, .. } = f;
    json!({
        "oneOf": [
            { "type": "string", "description": "Shorthand for `do: <task>`" },
            {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "on": { "enum": ["success", "failure", "always"], "default": "success" },
                    "when": template,
                    "publish": { "anyOf": [ { "type": ["object", "null"], "propertyNames": name }, { "$ref": "#/definitions/pairs" } ] },
                    "do": {
                        "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ]
                    }
                }
            }
        ]
    })
}

/// `definitions.trigger`: one trigger, with the keys of every trigger type.
fn trigger_schema(f: &Fragments) -> Value {
    let Fragments {
        duration,
        template,
        integration,
        ..
    } = f;
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["type"],
        "properties": {
            "name": { "type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_-]*$" },
            "type": { "enum": TRIGGER_TYPES.iter().copied().chain(["manual"]).collect::<Vec<_>>() },
            "description": { "type": "string" },
            "enabled": { "type": "boolean" },
            "run_for": {
                "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ],
                "description": "`owner` (default), `all_managed`, an org name, or a list of org names"
            },
            "criteria": template,
            "input": { "type": ["object", "null"], "description": "Workflow inputs computed from TRIGGER" },
            "integration": integration,
            "secret": { "oneOf": [ { "enum": ["required", "none"] }, { "type": "boolean" } ] },
            "response": { "enum": ["accepted", "wait"] },
            "timeout": duration,
            "max_body": { "oneOf": [ { "type": "integer", "minimum": 1 }, { "type": "string" } ] },
            "rate_limit": { "type": "integer", "minimum": 1 },
            "schedule": { "type": "string" },
            "timezone": { "type": "string" },
            "catch_up": { "enum": ["none", "latest"] },
            "form": { "type": "string", "description": "`type: form`: the form whose submissions start the workflow" },
            "events": { "type": "array", "items": { "enum": ["create", "update", "delete"] } },
            "fields": { "type": "array", "items": { "type": "string" } }
        }
    })
}

/// The JSON Schema of form files (`weft schema form`): what [`crate::load_form`] reads.
pub fn form_schema() -> Value {
    let kinds: Vec<&str> = crate::form::FieldKind::ALL
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let scalar = json!({ "type": ["string", "number", "integer", "boolean"] });
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://weft.dev/schema/form-v1.json",
        "title": "weft form",
        "description": "A hosted form: its fields and headings; a workflow's `type: form` trigger starts on each submission.",
        "type": "object",
        "additionalProperties": false,
        "required": ["form", "fields"],
        "properties": {
            "version": { "const": 1, "description": "Language version (1)" },
            "form": { "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$", "description": "The form's name (a workflow's trigger names it)" },
            "title": { "type": "string", "description": "The page's heading (default: the name, humanised)" },
            "description": { "type": "string" },
            "submit_label": { "type": "string", "description": "The submit button's text (default: Submit)" },
            "thank_you": { "type": "string", "description": "The confirmation message: a template over `form.values`" },
            "fields": {
                "type": "array",
                "minItems": 1,
                "items": { "oneOf": [ { "$ref": "#/definitions/heading" }, { "$ref": "#/definitions/field" } ] }
            }
        },
        "definitions": {
            "heading": {
                "type": "object",
                "additionalProperties": false,
                "required": ["section"],
                "properties": {
                    "section": { "type": "string", "description": "A section heading" },
                    "help": { "type": "string" }
                }
            },
            "field": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name"],
                "properties": {
                    "name": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description": "The key of the value (`values.NAME`)" },
                    "type": { "enum": kinds, "description": "The kind of input (default: text)" },
                    "label": { "type": "string" },
                    "help": { "type": "string" },
                    "placeholder": { "type": "string" },
                    "required": { "type": "boolean" },
                    "default": {},
                    "min": { "type": "number", "description": "Smallest number (or fewest choices of a multiselect)" },
                    "max": { "type": "number", "description": "Largest number (or most choices of a multiselect)" },
                    "min_length": { "type": "integer", "minimum": 0 },
                    "max_length": { "type": "integer", "minimum": 0 },
                    "pattern": { "type": "string", "description": "A regular expression the whole value must match" },
                    "pattern_message": { "type": "string", "description": "Shown when the pattern does not match" },
                    "options": {
                        "type": "array",
                        "items": {
                            "oneOf": [
                                scalar,
                                {
                                    "type": "object",
                                    "additionalProperties": false,
                                    "required": ["value"],
                                    "properties": { "label": { "type": "string" }, "value": scalar }
                                }
                            ]
                        }
                    },
                    "options_from": {
                        "description": "An options-generator workflow (answers `options: [{label, value}]`), run in the org's context",
                        "oneOf": [
                            { "type": "string" },
                            {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["workflow"],
                                "properties": {
                                    "workflow": { "type": "string" },
                                    "depends_on": { "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] }
                                }
                            }
                        ]
                    },
                    "show_when": { "type": "string", "description": "Shown only when this expression over `values` is true: `values.remote`" },
                    "secret": { "type": "boolean", "description": "Redacted like a secret input" }
                }
            }
        }
    })
}
