// Package relay is the channel that shows notifications in the user's open browser
// tabs. The router hands it every pop-up (show_*) and, as a live ring, every add_*;
// the relay encodes the websocket frame once and publishes it on the internal subject
// ui.<account>.<user> (or ui.<account>._all), where the dispatcher instance holding the
// user's websockets picks it up.
//
// It imports channels and events, never dispatcher or another channel.
package relay
