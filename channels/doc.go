// Package channels defines the contract between the router and the media that deliver
// notifications (the websocket relay, the notification center, email, mobile push),
// and holds one sub-package per medium.
//
// A channel only delivers: Send(ctx, delivery) returns nil, a skip, a permanent error
// or a transient one, and the router turns that into metrics, status, retries and dead
// letters. Optional capabilities (Runner, Closer, Broadcaster) are small interfaces the
// dispatcher discovers by type assertion.
//
// Imports point one way: channels may import events, never dispatcher; a channel
// sub-package never imports another channel.
package channels
