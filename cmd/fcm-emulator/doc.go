// Command fcm-emulator serves an FCM HTTP v1 emulator (package fcmemu): the OAuth
// token endpoint of a service account, messages:send with FCM's validation and error
// bodies, scripted failures and latency, and an admin API listing what it received.
// Point the dispatcher at it with FCM_ENDPOINT and a key file it writes:
//
//	go run ./cmd/fcm-emulator --credentials-out /tmp/fcm.json &
//	FCM_ENDPOINT=http://127.0.0.1:4004 FCM_CREDENTIALS_FILE=/tmp/fcm.json go run ./cmd/dispatcher
//	curl -s localhost:4004/emulator/messages
//
// Flags: --listen (127.0.0.1:4004), --project (only this project; empty: any),
// --latency (before every answer), --keep (messages kept for the admin API),
// --fail error=CODE[,token=T][,after=N][,times=N][,retry_after=S] (repeatable),
// --access-token (a bearer token accepted as is, repeatable) and --credentials-out
// (write a service-account key whose token_uri is this emulator's /token; the
// emulator verifies its signature). --help prints them; a bad flag exits 2.
//
// It is a development and benchmark tool, not a component of the dispatcher: it
// imports only fcmemu.
package main
