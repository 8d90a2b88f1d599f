//! The OpenAPI 3.0 description served at `GET /api/v1/openapi.json`.

use serde_json::{json, Value};

use crate::{API_PREFIX, TOKEN_TTL_SECS};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn result_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CmdletResult"}}}
    })
}

/// The responses every authenticated route that runs a cmdlet can give.
fn cmdlet_responses(ok: &str, with_404: bool) -> Value {
    let mut r = json!({
        "200": result_response(ok),
        "400": {"$ref": "#/components/responses/BadRequest"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Denied"},
    });
    if with_404 {
        r["404"] = json!({"$ref": "#/components/responses/NotFound"});
    }
    r
}

fn path_param(name: &str, description: &str, example: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": {"type": "string"},
        "example": example
    })
}

fn patch_body(description: &str, example: Value) -> Value {
    json!({
        "required": true,
        "description": description,
        "content": {"application/json": {
            "schema": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"$ref": "#/components/schemas/ShellValue"}
            },
            "example": example
        }}
    })
}

/// The document. Configuration nouns are listed from the admin crate's schema.
pub fn document() -> Value {
    let nouns: Vec<&str> = confab_admin::schema::kinds()
        .iter()
        .map(|k| k.noun)
        .collect();
    let noun_param = json!({
        "name": "noun",
        "in": "path",
        "required": true,
        "description": "A configuration type: the noun of its Get-/Set- cmdlets.",
        "schema": {"type": "string", "enum": nouns},
        "example": "CsMeetingConfiguration"
    });
    let identity_param = path_param("identity", "Scope of the settings: Global, Site:<name>, Service:<role>:<fqdn>, or a per-user policy name (Tag:<name>).", "Global");
    let address_param = path_param(
        "address",
        "The user's SIP address, with or without the sip: scheme.",
        "alice@example.test",
    );
    let p = |s: &str| format!("{API_PREFIX}{s}");
    let mut paths = serde_json::Map::new();
    paths.insert(p("/tokens"), json!({
        "post": {
            "tags": ["auth"],
            "summary": "Log in: exchange an administrator's name and password for a bearer token",
            "operationId": "createToken",
            "security": [],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Login"}}}},
            "responses": {
                "200": {"description": "A new token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "429": {"description": "Too many failed sign-ins from this address or for this account; try again after Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "503": {"description": "Too many sign-ins in progress; try again after Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        },
        "delete": {
            "tags": ["auth"],
            "summary": "Log out: revoke the token this request is authorized with",
            "operationId": "revokeToken",
            "responses": {
                "204": {"description": "Revoked"},
                "401": {"$ref": "#/components/responses/Unauthorized"}
            }
        }
    }));
    paths.insert(p("/cmdlets"), json!({
        "post": {
            "tags": ["cmdlets"],
            "summary": "Run Lync Management Shell commands",
            "description": "Runs a script (one or more commands, separated by newlines or ';', with pipelines) with the caller's roles. The whole script is checked first (cmdlet and parameter names, value types, access), so a script that fails these checks changes nothing. Changes are recorded in the audit log with origin 'rest <peer ip:port>'.",
            "operationId": "runCmdlets",
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Command"},
                "example": {"command": "Set-CsMeetingConfiguration -PstnCallersBypassLobby $false"}
            }}},
            "responses": cmdlet_responses("The objects the script produced, and its formatted output", false)
        }
    }));
    paths.insert(
        p("/users"),
        json!({
            "get": {
                "tags": ["users"],
                "summary": "List users (Get-CsUser)",
                "operationId": "listUsers",
                "responses": cmdlet_responses("The users", false)
            },
            "post": {
                "tags": ["users"],
                "summary": "Create a user who may sign in (New-CsUser -Identity sip:{SipAddress} -Password … [-DisplayName …] [-OU …])",
                "description": "The caller's user scopes hold: a role scoped to OU:<dn> creates users in that OU (or below) only (403 otherwise). The command echoed back and the audit log show the password as ********.",
                "operationId": "createUser",
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["SipAddress", "Password"],
                        "additionalProperties": false,
                        "properties": {
                            "SipAddress": {"type": "string", "description": "sip:user@domain (the scheme may be left out)"},
                            "Password": {"type": "string", "format": "password", "minLength": 1, "maxLength": 128},
                            "DisplayName": {"type": "string", "maxLength": 128},
                            "OU": {"type": "string", "description": "An LDAP distinguished name, OU=…,DC=…"}
                        }
                    },
                    "example": {"SipAddress": "sip:carol@example.test", "Password": "a long secret", "DisplayName": "Carol", "OU": "OU=Sales,DC=example,DC=test"}
                }}},
                "responses": {
                    "201": result_response("Created: the new user (objects[0])"),
                    "400": {"$ref": "#/components/responses/BadRequest"},
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "403": {"$ref": "#/components/responses/Denied"},
                    "409": error_response("A user with this address exists already (kind: exists)")
                }
            }
        }),
    );
    paths.insert(p("/users/{address}"), json!({
        "parameters": [address_param],
        "get": {
            "tags": ["users"],
            "summary": "One user (Get-CsUser -Identity sip:{address})",
            "operationId": "getUser",
            "responses": cmdlet_responses("The user", true)
        },
        "patch": {
            "tags": ["users"],
            "summary": "Change a user (Set-CsUser -Identity sip:{address} -Property value …)",
            "operationId": "updateUser",
            "requestBody": patch_body("Set-CsUser parameters and their values (Enabled, DisplayName, LineURI, EnterpriseVoiceEnabled, HostedVoiceMail).", json!({"Enabled": false, "DisplayName": "Alice Smith"})),
            "responses": cmdlet_responses("Changed", true)
        },
        "delete": {
            "tags": ["users"],
            "summary": "Delete a user with their contact list, stored messages and meetings (Remove-CsUser -Identity sip:{address})",
            "operationId": "deleteUser",
            "responses": {
                "204": {"description": "Deleted"},
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Denied"},
                "404": {"$ref": "#/components/responses/NotFound"}
            }
        }
    }));
    paths.insert(
        p("/config/{noun}"),
        json!({
            "parameters": [noun_param],
            "get": {
                "tags": ["config"],
                "summary": "All settings of a configuration type (Get-{noun})",
                "operationId": "listConfig",
                "responses": cmdlet_responses("The settings at every scope", true)
            }
        }),
    );
    paths.insert(p("/config/{noun}/{identity}"), json!({
        "parameters": [noun_param, identity_param],
        "get": {
            "tags": ["config"],
            "summary": "Settings at one scope (Get-{noun} -Identity {identity})",
            "operationId": "getConfig",
            "responses": cmdlet_responses("The settings", true)
        },
        "patch": {
            "tags": ["config"],
            "summary": "Change settings at one scope (Set-{noun} -Identity {identity} -Property value …)",
            "operationId": "updateConfig",
            "requestBody": patch_body("Properties of the configuration type and their new values.", json!({"PstnCallersBypassLobby": false})),
            "responses": cmdlet_responses("Changed", true)
        }
    }));
    let key_param = path_param(
        "key",
        "The meeting's conference key (8 characters, A-Z and 0-9; any case).",
        "K7Q2ZP4M",
    );
    let meeting_security = json!([{"bearerAuth": []}, {"userBasic": []}]);
    let meeting_responses = |ok: &str, with_404: bool| {
        let mut r = cmdlet_responses(ok, with_404);
        r["200"] = json!({"description": ok, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MeetingResult"}}}});
        r["429"] = json!({"description": "Too many failed user sign-ins from this address or for this user; try again after Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        r
    };
    paths.insert(p("/meetings"), json!({
        "get": {
            "tags": ["meetings"],
            "summary": "List meetings: an administrator's (Get-CsMeeting [-Organizer]), or a user's own",
            "operationId": "listMeetings",
            "security": meeting_security,
            "parameters": [{"name": "organizer", "in": "query", "required": false, "schema": {"type": "string"}, "description": "Only this organizer's meetings (user@domain)"}],
            "responses": meeting_responses("The meetings", false)
        },
        "post": {
            "tags": ["meetings"],
            "summary": "Create a meeting (New-CsMeeting for an administrator; a user for themselves). Unset values come from CsMeetingConfiguration and the organizer's CsConferencingPolicy",
            "operationId": "createMeeting",
            "security": meeting_security,
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/NewMeeting"},
                "example": {"organizer": "alice@example.test", "kind": "Private", "access": "Invited", "subject": "Budget", "invitees": ["bob@example.test"], "end": "2027-01-15T10:00:00Z"}
            }}},
            "responses": {
                "201": {"description": "The meeting (an assigned one that existed is returned unchanged, with a warning)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MeetingResult"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Denied"},
                "409": error_response("The organizer has MaxScheduledMeetingsPerOrganizer (1000) meetings (kind: limit)")
            }
        }
    }));
    paths.insert(p("/meetings/{key}"), json!({
        "parameters": [key_param],
        "get": {
            "tags": ["meetings"],
            "summary": "One meeting (Get-CsMeeting -Identity {key}); to a user, someone else's meeting does not exist",
            "operationId": "getMeeting",
            "security": meeting_security,
            "responses": meeting_responses("The meeting", true)
        },
        "delete": {
            "tags": ["meetings"],
            "summary": "Remove a meeting (Remove-CsMeeting -Identity {key}); a user removes their own only",
            "operationId": "removeMeeting",
            "security": meeting_security,
            "responses": {
                "204": {"description": "Removed"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Denied"},
                "404": {"$ref": "#/components/responses/NotFound"}
            }
        }
    }));
    paths.insert(p("/meetings/{key}/roster"), json!({
        "parameters": [key_param],
        "get": {
            "tags": ["meetings"],
            "summary": "The live roster and lobby of a meeting in progress on this server (its organizer, or an administrator allowed Remove-CsMeeting on the organizer)",
            "operationId": "meetingRoster",
            "security": meeting_security,
            "responses": {
                "200": {"description": "Participants and the lobby", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LiveRoster"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Denied"},
                "404": error_response("No such meeting, or it is not live on this server (kind: not_found, not_live)")
            }
        }
    }));
    for (action, summary, op) in [
        ("lock", "Lock a live meeting: everyone but the organizer and presenters waits in the lobby (what the *7 keypad command does)", "meetingLock"),
        ("unlock", "Unlock a live meeting (those already waiting stay in the lobby until admitted)", "meetingUnlock"),
        ("end", "End a live meeting: every participant, lobby included, is hung up (BYE) and the conference ends; the meeting stays scheduled", "meetingEnd"),
    ] {
        paths.insert(p(&format!("/meetings/{{key}}/{action}")), json!({
            "parameters": [key_param],
            "post": {
                "tags": ["meetings"],
                "summary": format!("{summary} — the organizer or a presenter, or an administrator allowed Remove-CsMeeting on the organizer; audited for administrators"),
                "operationId": op,
                "security": meeting_security,
                "responses": {
                    "204": {"description": "Done"},
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "403": {"$ref": "#/components/responses/Denied"},
                    "404": error_response("No such meeting, or it is not live on this server (kind: not_found, not_live)")
                }
            }
        }));
    }
    paths.insert(p("/meetings/{key}/participants/{id}/{action}"), json!({
        "parameters": [
            key_param,
            path_param("id", "The participant's id from the roster, URL-encoded.", "sip%3Abob%40example.test"),
            {"name": "action", "in": "path", "required": true, "schema": {"type": "string", "enum": ["admit", "deny", "mute", "unmute", "remove", "dialout"]}}
        ],
        "post": {
            "tags": ["meetings"],
            "summary": "Admit or deny someone waiting in the lobby, mute, unmute or remove a participant, or dial out to a user of this server (dialout: the id is the callee's SIP URI; the focus calls them in) — the organizer or a presenter, or an administrator allowed Remove-CsMeeting on the organizer; audited for administrators",
            "operationId": "meetingParticipantAction",
            "security": meeting_security,
            "responses": {
                "204": {"description": "Done"},
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Denied"},
                "404": error_response("No such meeting or participant, or the meeting is not live on this server (kind: not_found, no_such_participant, not_live)")
            }
        }
    }));
    paths.insert(p("/openapi.json"), json!({
        "get": {
            "tags": ["meta"],
            "summary": "This document",
            "operationId": "openapi",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.0 document", "content": {"application/json": {"schema": {"type": "object"}}}}}
        }
    }));

    let user_only = json!([{"userBasic": []}]);
    paths.insert(p("/me/pin"), json!({
        "get": {
            "tags": ["me"],
            "summary": "The caller's dial-in PIN: whether it is set or locked out, when it was changed and expires (never the PIN)",
            "operationId": "getMyPin",
            "security": user_only,
            "responses": {
                "200": {"description": "The PIN's state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PinInfo"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": error_response("An administrator's token: administrators use Get-CsClientPinInfo (kind: denied)")
            }
        },
        "put": {
            "tags": ["me"],
            "summary": "Set the caller's own dial-in PIN under their CsPinPolicy (length, common patterns, history); unlocks it; audited without the PIN",
            "operationId": "setMyPin",
            "security": user_only,
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"type": "object", "required": ["pin"], "additionalProperties": false, "properties": {"pin": {"type": "string", "pattern": "^[0-9]{4,24}$", "format": "password"}}},
                "example": {"pin": "739155"}
            }}},
            "responses": {
                "200": {"description": "Set; the PIN's new state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PinInfo"}}}},
                "400": error_response("Refused by the PIN policy, the message naming the rule (e.g. MinPasswordLength, AllowCommonPatterns, PINHistoryCount), or a malformed body (kind: bad_request)"),
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": error_response("An administrator's token: administrators use Set-CsClientPin (kind: denied)")
            }
        }
    }));

    paths.insert(p("/me/password"), json!({
        "put": {
            "tags": ["me"],
            "summary": "Change the caller's own SIP password: the current one again (checked like a sign-in, throttled) and the new one; the old password stops working at once and the caller's web sessions end; audited without either password",
            "operationId": "setMyPassword",
            "security": user_only,
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"type": "object", "required": ["current", "new"], "additionalProperties": false, "properties": {
                    "current": {"type": "string", "format": "password"},
                    "new": {"type": "string", "format": "password", "minLength": 1, "maxLength": 128}
                }},
                "example": {"current": "old secret", "new": "a new long secret"}
            }}},
            "responses": {
                "200": {"description": "Changed", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "user": {"type": "string"}, "changed": {"type": "boolean"}, "web_sessions_ended": {"type": "boolean"}
                }}}}},
                "400": error_response("A malformed body, or a new password the rules refuse (kind: bad_request)"),
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": error_response("'current' is wrong (nothing changed), or an administrator's token: administrators use Set-CsUserPassword (kind: denied)"),
                "429": error_response("Too many failed sign-ins (kind: throttled); Retry-After says when to try again")
            }
        }
    }));

    let forwarding =
        json!({"application/json": {"schema": {"$ref": "#/components/schemas/CallForwarding"}}});
    paths.insert(p("/me/forwarding"), json!({
        "get": {
            "tags": ["me"],
            "summary": "The caller's call forwarding settings (the defaults when none are set)",
            "operationId": "getMyForwarding",
            "security": user_only,
            "responses": {
                "200": {"description": "The settings", "content": forwarding},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": error_response("An administrator's token: administrators use Get-CsUserCallForwarding (kind: denied)")
            }
        },
        "put": {
            "tags": ["me"],
            "summary": "Replace the caller's call forwarding settings, checked against their CsVoicePolicy (AllowCallForwarding, AllowSimulRing, EnableTeamCall), EnterpriseVoiceEnabled (phone numbers) and HostedVoiceMail (voicemail); audited",
            "operationId": "setMyForwarding",
            "security": user_only,
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/CallForwarding"},
                "example": {"simul_ring": "tel:+14255550199", "unanswered": "voicemail", "unanswered_after_secs": 15}
            }}},
            "responses": {
                "200": {"description": "Set; the settings as stored", "content": forwarding},
                "400": error_response("Refused, nothing changed: the message names the setting and the rule or policy property (e.g. 'simul_ring: … AllowSimulRing $false'), or a malformed body (kind: bad_request)"),
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": error_response("An administrator's token: administrators use Set-CsUserCallForwarding (kind: denied)")
            }
        },
        "delete": {
            "tags": ["me"],
            "summary": "Return the caller's call forwarding to the defaults; audited",
            "operationId": "clearMyForwarding",
            "security": user_only,
            "responses": {
                "200": {"description": "Cleared; the defaults", "content": forwarding},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": error_response("An administrator's token: administrators use Set-CsUserCallForwarding -Clear (kind: denied)")
            }
        }
    }));

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "confab administration API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Runs Lync Management Shell cmdlets against confab with the caller's admin roles (RBAC) and records changes in the audit log. Log in with POST /api/v1/tokens, then send 'Authorization: Bearer <token>'."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "auth"}, {"name": "cmdlets"}, {"name": "users"}, {"name": "config"}, {"name": "meetings"}, {"name": "me"}, {"name": "meta"}
        ],
        "paths": Value::Object(paths),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": format!("A token from POST {API_PREFIX}/tokens, valid for {TOKEN_TTL_SECS} seconds.")
                },
                "userBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A user's SIP address and SIP password (user@domain:password), for the meeting routes and /me routes only: a user sees and manages the meetings they organize, and sets their own dial-in PIN. Failed sign-ins are throttled like administrators'."
                }
            },
            "schemas": {
                "Login": {
                    "type": "object",
                    "required": ["name", "password"],
                    "properties": {"name": {"type": "string"}, "password": {"type": "string", "format": "password"}}
                },
                "Token": {
                    "type": "object",
                    "required": ["token", "expires_in"],
                    "properties": {
                        "token": {"type": "string", "description": "64 hex characters"},
                        "expires_in": {"type": "integer", "description": "Seconds until the token expires", "example": TOKEN_TTL_SECS}
                    }
                },
                "Command": {
                    "type": "object",
                    "required": ["command"],
                    "properties": {"command": {"type": "string", "example": "Get-CsMeetingConfiguration"}}
                },
                "CmdletResult": {
                    "type": "object",
                    "required": ["objects", "text", "warnings"],
                    "properties": {
                        "command": {"type": "string", "description": "Resource routes: the command that was run"},
                        "objects": {
                            "type": "array",
                            "description": "The objects output, each with its properties and '_type' (e.g. CsUser); bare values for Select-Object -ExpandProperty",
                            "items": {}
                        },
                        "text": {"type": "string", "description": "The output formatted as the Lync Management Shell prints it"},
                        "warnings": {
                            "type": "array",
                            "description": "What the shell prints as WARNING: the commands succeeded, but something they set has no effect (e.g. a property confab does not enforce yet)",
                            "items": {"type": "string"}
                        }
                    }
                },
                "NewMeeting": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "organizer": {"type": "string", "description": "user@domain; required for an administrator, the caller for a user"},
                        "kind": {"type": "string", "enum": ["Assigned", "Private"], "description": "Default: CsMeetingConfiguration AssignedConferenceTypeByDefault"},
                        "access": {"type": "string", "enum": ["Locked", "Invited", "SameEnterprise", "Everyone"], "description": "Default: SameEnterprise"},
                        "subject": {"type": "string"},
                        "presenters": {"type": "string", "enum": ["None", "Company", "Everyone"], "description": "Default: CsMeetingConfiguration DesignateAsPresenter"},
                        "pstn_bypass_lobby": {"type": "boolean", "description": "Default: CsMeetingConfiguration PstnCallersBypassLobby"},
                        "invitees": {"type": "array", "items": {"type": "string"}},
                        "end": {"type": "string", "format": "date-time", "description": "A private meeting's end (it expires 14 days later)"},
                        "site": {"type": "string", "description": "The site whose meeting configuration and conferencing policy apply (default: Global)"}
                    }
                },
                "MeetingResult": {
                    "type": "object",
                    "required": ["objects", "warnings"],
                    "properties": {
                        "objects": {"type": "array", "items": {"$ref": "#/components/schemas/Meeting"}},
                        "warnings": {"type": "array", "items": {"type": "string"}},
                        "command": {"type": "string", "description": "For an administrator: the cmdlet that was run"},
                        "text": {"type": "string", "description": "For an administrator: the shell's formatted output"}
                    }
                },
                "Meeting": {
                    "type": "object",
                    "properties": {
                        "_type": {"type": "string", "example": "CsMeeting"},
                        "Identity": {"type": "string", "description": "The conference key"},
                        "Organizer": {"type": "string", "example": "sip:alice@example.test"},
                        "ConferenceId": {"type": "string", "description": "Numeric dial-in ID (Luhn check digit last)"},
                        "DialInNumbers": {"type": "array", "items": {"type": "string"}, "description": "Display numbers of the dial-in access numbers of the organizer's dial plan region (DialinConferencingRegion), by Priority"},
                        "DialIn": {"type": "array", "items": {"$ref": "#/components/schemas/AccessNumber"}, "description": "The same access numbers in full"},
                        "Kind": {"type": "string", "enum": ["Assigned", "Private"]},
                        "Subject": {"type": "string"},
                        "Access": {"type": "string", "enum": ["Locked", "Invited", "SameEnterprise", "Everyone"]},
                        "Presenters": {"type": "string", "enum": ["None", "Company", "Everyone"]},
                        "PstnBypassLobby": {"type": "boolean"},
                        "Invitees": {"type": "array", "items": {"type": "string"}},
                        "Uri": {"type": "string", "description": "The conference URI any SIP client can dial"},
                        "MeetUrl": {"type": "string"},
                        "CreatedAt": {"type": "string", "format": "date-time"},
                        "EndTime": {"type": "string", "format": "date-time", "nullable": true},
                        "LastUsed": {"type": "string", "format": "date-time", "nullable": true},
                        "ExpiresAt": {"type": "string", "format": "date-time", "nullable": true}
                    }
                },
                "AccessNumber": {
                    "type": "object",
                    "required": ["uri", "display_number", "line_uri", "languages"],
                    "properties": {
                        "uri": {"type": "string", "example": "sip:dialin@example.test", "description": "Its identity (Lync's PrimaryUri)"},
                        "display_number": {"type": "string", "example": "+1 (425) 555-0100"},
                        "line_uri": {"type": "string", "example": "tel:+14255550100"},
                        "languages": {"type": "array", "items": {"type": "string"}, "example": ["en-US"], "description": "Primary language first"}
                    }
                },
                "CallForwarding": {
                    "type": "object",
                    "additionalProperties": false,
                    "description": "Targets are tel:+<digits> (a phone number, needs EnterpriseVoiceEnabled), sip:user@domain (a user of this server) or voicemail (needs HostedVoiceMail); immediate excludes simul_ring and team. Missing fields take their defaults.",
                    "properties": {
                        "immediate": {"type": "string", "nullable": true, "example": "tel:+14255550199", "description": "Every call goes here instead (AllowCallForwarding, except voicemail)"},
                        "simul_ring": {"type": "string", "nullable": true, "example": "tel:+14255550199", "description": "Rings with the user's endpoints: a number or a user (AllowSimulRing)"},
                        "team": {"type": "array", "maxItems": 25, "items": {"type": "string", "example": "bob@example.test"}, "description": "Team call members, user@domain (EnableTeamCall)"},
                        "team_delay_secs": {"type": "integer", "minimum": 0, "maximum": 60, "default": 0},
                        "unanswered": {"type": "string", "nullable": true, "example": "voicemail", "description": "Where an unanswered call goes (AllowCallForwarding, except voicemail); null: voicemail when the user has it"},
                        "unanswered_after_secs": {"type": "integer", "minimum": 5, "maximum": 60, "default": 20},
                        "busy": {"type": "string", "nullable": true, "example": "sip:bob@example.test", "description": "Where a call goes when the user is busy (AllowCallForwarding, except voicemail)"}
                    }
                },
                "PinInfo": {
                    "type": "object",
                    "required": ["user", "is_pin_set", "is_locked_out", "failed_attempts", "min_length"],
                    "properties": {
                        "user": {"type": "string", "example": "sip:alice@example.test"},
                        "is_pin_set": {"type": "boolean"},
                        "is_locked_out": {"type": "boolean"},
                        "last_changed": {"type": "string", "format": "date-time", "nullable": true},
                        "expires": {"type": "string", "format": "date-time", "nullable": true, "description": "From CsPinPolicy PINLifetime; null: never"},
                        "failed_attempts": {"type": "integer"},
                        "min_length": {"type": "integer", "description": "CsPinPolicy MinPasswordLength"}
                    }
                },
                "LiveRoster": {
                    "type": "object",
                    "required": ["participants", "lobby", "locked"],
                    "properties": {
                        "participants": {"type": "array", "items": {"$ref": "#/components/schemas/LiveParticipant"}},
                        "lobby": {"type": "array", "items": {"$ref": "#/components/schemas/LiveParticipant"}},
                        "locked": {"type": "boolean", "description": "Locked by a leader (*7, the meeting page, REST): everyone but leaders waits in the lobby"}
                    }
                },
                "LiveParticipant": {
                    "type": "object",
                    "required": ["id", "display", "role", "muted", "origin"],
                    "properties": {
                        "id": {"type": "string"},
                        "display": {"type": "string"},
                        "role": {"type": "string"},
                        "muted": {"type": "boolean"},
                        "origin": {"type": "string"}
                    }
                },
                "ShellValue": {
                    "description": "A parameter value: string, number, boolean, null, an array of these, or an object (a hashtable such as {\"add\": \"Set-CsUser\"})",
                    "nullable": true,
                    "oneOf": [
                        {"type": "string"}, {"type": "number"}, {"type": "boolean"},
                        {"type": "array", "items": {}}, {"type": "object"}
                    ]
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "kind"],
                    "properties": {
                        "error": {"type": "string", "description": "What went wrong, naming the cmdlet, parameter or role concerned"},
                        "kind": {
                            "type": "string",
                            "enum": ["unknown_cmdlet", "unknown_parameter", "bad_value", "missing", "denied", "failed", "parse", "unauthorized", "not_found", "bad_request", "internal", "throttled", "busy", "limit", "not_live", "no_such_participant"]
                        }
                    }
                }
            },
            "responses": {
                "BadRequest": error_response("The request or script is invalid (kind: parse, unknown_cmdlet, unknown_parameter, bad_value, missing, failed or bad_request); nothing was changed unless the script failed part way (kind failed)"),
                "Unauthorized": error_response("Missing, invalid or expired bearer token, or wrong name or password (kind: unauthorized)"),
                "Denied": error_response("The caller's roles do not allow the cmdlet or scope; the message names the roles that would (kind: denied)"),
                "NotFound": error_response("No such user, configuration type or scope (kind: not_found)")
            }
        }
    })
}
