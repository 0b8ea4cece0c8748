// Package fcmemu is an FCM HTTP v1 emulator in a process: a test kit for the push
// channel and, through cmd/fcm-emulator, a server a person runs beside the
// dispatcher. There is no official FCM emulator (firebase-tools#4222).
//
//	emu := fcmemu.New(fcmemu.Options{Project: "p1", Latency: 100 * time.Millisecond})
//	srv := httptest.NewUnstartedServer(emu)
//	fcmemu.ConfigureServer(srv.Config) // HTTP/2 without TLS beside HTTP/1.1
//	srv.Start()
//	emu.Fail(fcmemu.Rule{Token: "gone", Error: fcmemu.Unregistered})
//	... send with FCM_ENDPOINT = srv.URL ...
//	emu.MessagesTo("phone-token")
//
// # Endpoints
//
//   - POST /token: Google's OAuth token endpoint for a service account's JWT-bearer
//     grant (RFC 7523): an RS256 assertion with iss, scope (firebase.messaging or
//     cloud-platform), aud (this URL), iat and exp (at most an hour apart) gets
//     {"access_token","expires_in","token_type":"Bearer"}. The signature is verified
//     for the accounts it knows (Options.Accounts, Trust); with Options.Strict only
//     those get tokens. A refusal is 400 {"error":"invalid_grant",...} as Google's.
//   - POST /v1/projects/{project}/messages:send: FCM's send. It checks the bearer
//     token (401 UNAUTHENTICATED), the project (403 PERMISSION_DENIED for another one
//     when Options.Project is set), then the message as FCM does: only the v1 message
//     members, exactly one of token, topic and condition, the token's form (letters,
//     digits, ':', '-', '_'), no reserved data key (from, message_type, google.*,
//     gcm.*), string data values, at most 4,096 bytes of data and notification text,
//     android priority normal or high and a ttl such as "30s", the notification
//     priority and visibility enums, apns-priority 1, 5 or 10, a known apns-push-type,
//     an apns-collapse-id of at most 64 bytes, and an APNs payload with an aps
//     dictionary of at most 4 KiB. A refusal is FCM's 400 INVALID_ARGUMENT body with
//     the FcmError detail and a BadRequest detail naming the field. Then the scripted
//     failures apply (Rule); otherwise the message is kept and the answer is
//     {"name":"projects/<p>/messages/0:<ms>%<n>"}. validate_only checks without keeping.
//   - Admin, the emulator's own: GET /emulator/messages[?token=] lists the kept
//     messages ({"total","messages"}), DELETE /emulator/messages forgets them;
//     GET/POST/DELETE /emulator/rules lists, adds (a Rule as JSON) and clears the
//     scripted failures; PUT /emulator/latency {"latency":"100ms"}; GET
//     /emulator/stats; POST /emulator/reset forgets messages, rules and stats (minted
//     tokens stay valid).
//
// # Error bodies
//
// A Rule answers as FCM does, with the Google API status and the FcmError detail:
// UNREGISTERED 404 NOT_FOUND, INVALID_ARGUMENT 400 (naming message.token),
// SENDER_ID_MISMATCH 403 PERMISSION_DENIED, QUOTA_EXCEEDED 429 RESOURCE_EXHAUSTED
// with Retry-After (60 s unless the rule says), UNAVAILABLE 503, INTERNAL 500,
// THIRD_PARTY_AUTH_ERROR 401 UNAUTHENTICATED; UNAUTHENTICATED is a bare 401 without
// an FCM detail, as for a revoked access token. A rule matches one token or all, lets
// the first After requests pass and fails the next Times (0: all).
//
// # Invariants
//
// It is safe for concurrent use and holds bounded memory: the last Options.Keep
// messages (10,000 by default), the rules and the minted tokens (expired ones are
// dropped when a new one is minted). Latency waits end when the client goes away.
// It imports nothing of the module, so a test of any package may use it.
package fcmemu
