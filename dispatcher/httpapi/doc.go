// Package httpapi is the dispatcher's HTTP listener: the producer API
// (POST /api/v1/notify/{account}/{user}/{type}), health and readiness probes, the
// Prometheus endpoint, and the mount point for the other components' handlers
// (websocket relay, notification center, admin API, demo page) through Config.Routes.
//
// Invariants:
//   - every error answer is the contract's {"error":{"code","message","field"?}} with
//     Content-Type application/json, the mux's own 404 and 405 included;
//   - every refused publish is counted in notify_events_rejected_total, authentication
//     failures and rate limiting included;
//   - an accepted event is validated by events.Validate and published with its
//     canonical encoding; the 202 body's warnings are an array, never null;
//   - API keys are compared in constant time; keys, tokens and bodies are never logged.
//
// The producer route checks, in order: credential (401; an admin key is 403), path
// names (400), the key's account (403), type (404), Idempotency-Key (400),
// Content-Type (415; a missing one counts as JSON), size (413), body (400), readiness
// (503), the account's rate (429) and the publish itself (503).
//
// An Idempotency-Key is scoped to its account: the event id is derived from both (see
// IdempotentID), so JetStream deduplicates a retried request and two accounts never
// collide.
//
// The package imports events, events/producer (for its Result), events/token,
// dispatcher (for Metrics) and channels/directory (for the admin API's profiles); it
// never imports a delivery channel or cmd, and reads no flags or
// environment.
package httpapi
