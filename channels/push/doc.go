// Package push is the mobile push channel: it sends add_error and add_call to every
// device a user registered in the recipient directory, through Firebase Cloud
// Messaging's HTTP v1 API with github.com/appleboy/go-fcm (which wraps
// firebase.google.com/go/v4/messaging). The FCM emulator it is tested against, and
// that the fcm-emulator command serves, is the sub-package fcmemu.
//
// # What it owns
//
//   - The message: notification title (the header, or "Error" / "Incoming call") and
//     body (events.PlainText of text, cut to 1 KiB), data (type, id, click, and for
//     calls call_from, to, element_type, element_id), and the platform settings that
//     make it ring: Android priority high, the app's notification channel ("calls" or
//     "errors"), a sound; APNs apns-priority 10, apns-push-type alert, a sound, and
//     interruption-level time-sensitive for calls.
//   - Reading FCM's answer device by device (a failed token is not an error of the
//     batch) and acting on it; pruning dead tokens from the directory; the send rate;
//     its metrics: notify_push_tokens_pruned_total, notify_push_messages_total{outcome}
//     and notify_push_config_errors_total{problem}.
//
// # The answer to the router
//
// Per device, FCM's errorCode decides:
//
//   - UNREGISTERED, SENDER_ID_MISMATCH, INVALID_ARGUMENT naming the token: the token
//     is gone for good; it is removed (Store.RemoveDevice) and counted, and the send
//     is done with that device. Every device pruned and none delivered: skipped,
//     no_device.
//   - QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL, a network error or timeout: a transient
//     error carrying FCM's Retry-After (channels.RetryAfter), so the router backs off
//     at least that long. go-fcm itself retries a 503 up to four times (0, 1, 2, 4 s)
//     unless Retry-After asks for more than two minutes; 429 and 500 come straight
//     back.
//   - THIRD_PARTY_AUTH_ERROR (the project's APNs or web push credentials) and a 401,
//     403 or 404 without an FCM code (our credentials, or a project they cannot send
//     for), and a token endpoint refusing the service account's key: configuration
//     problems. They are permanent (dead-lettered, ErrThirdPartyAuth or
//     ErrCredentials), counted, and logged at error once per interval with the number
//     held back, never once per notification.
//   - Any other 4xx: the message was refused; permanent.
//
// A transient failure wins over a permanent one, so the devices that can still get
// the event do. No profile or no device is skipped as no_device, push switched off as
// opted_out; before the directory's first load, Send waits (within Timeout) rather
// than skipping a user it does not know yet.
//
// # Invariants
//
//   - A retry goes only to the devices that have not had the event: the sends with a
//     transient failure, and every send of an _all event (the router resends those
//     to every user when one fails), remember their delivered and pruned devices in a
//     bounded in-memory ledger keyed by event, account and user (Config.Remember,
//     100,000 sends, about 100 bytes each plus 8 per device). Beyond it, or after a
//     restart, a retry reaches every device of the user again; the Android tag and
//     apns-collapse-id, derived from the event id, make the copy replace the
//     notification shown instead of adding one.
//   - Nothing logged names a token or a credential: a token is a 12-digit hash.
//   - A client-side token bucket (Config.RatePerMinute, FCM's 600,000 a minute per
//     project by default, bursts of one second's worth) is taken before each batch,
//     one token per device; the wait ends with the send's context.
//   - One send returns within Config.Timeout (20 s), below the router's 30-second ack
//     wait.
//
// # Decisions
//
//   - FCM refuses the data key "from" (reserved for the sender id the device sees),
//     so the contract's from is sent as call_from; to and the other keys are as the
//     contract names them. A data key is present only with a value; click always.
//   - The collapse key (android collapse_key) is set for calls only: FCM keeps at most
//     four collapsible messages per device while it is offline, and errors should all
//     arrive. Every message has the Android tag and apns-collapse-id, so a resent copy
//     replaces the one shown.
//   - The sender owns its HTTP client (an OAuth transport over Config.Transport)
//     rather than using fcm.WithHTTPClient, which needs credentials JSON (there is
//     none with a static token) and fixes a 10-second timeout; it passes it with
//     fcm.WithCustomClientOption. It fetches the access token itself before each
//     batch (a cached token costs nothing), so a refused key is told from a refused
//     message and reported as configuration, instead of surfacing as go-fcm's retried
//     "unknown error".
//   - With Config.Endpoint (FCM_ENDPOINT) the requests go to Endpoint + "/v1"; access
//     tokens always come from the service account's token_uri, so a key file whose
//     token_uri is the emulator's /token runs the real credentials path against it.
//
// # Throughput
//
// FCM v1 has no multi-device request: go-fcm sends one HTTP request per device
// (SendEach, 50 goroutines per batch), multiplexed over HTTP/2. A send waits for its
// answers, so the messages per second are the sends in flight times the devices per
// send over FCM's latency: at 100 ms and one device per user, 64 sends in flight
// give about 600 msgs/s, and 5,000 msgs/s need about 1,024 in flight (BENCHMARKS.md:
// BenchmarkSend). So the sender tells the router its own number (Concurrency, from
// Config.InFlight: 1,024 by default). A send in flight costs a goroutine and a
// stream, not a connection.
//
// # Imports
//
// channels, channels/directory (a library, not a channel) and events; never the
// dispatcher, cmd or another channel.
package push
