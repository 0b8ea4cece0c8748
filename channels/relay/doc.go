// Package relay is the channel that shows notifications in the user's open browser
// tabs. The router hands it every pop-up (show_*) and, as a live ring, every add_*;
// the relay encodes the websocket frame once and publishes it on the internal subject
// ui.<account>.<user> (or ui.<account>._all), where the dispatcher instance holding the
// user's websockets picks it up. The relay's own hub gets the frame directly (the
// shared connection is opened with NoEcho).
//
// The Hub serves GET /ws. coder/websocket does the handshake (origin check, upgrade,
// hijack); after it the hub speaks the server side of RFC 6455 itself (wire.go,
// reader.go), so that an idle tab costs one parked reader goroutine and no buffer,
// and a frame is framed once and written without a goroutine when the socket has room.
//
// It imports channels and events, never dispatcher or another channel.
package relay
