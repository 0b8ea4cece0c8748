package bench

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events"
)

// The recipients of the scenarios that go through email and push: profiles in the
// daemon's directory, and the wait until the daemon knows them.

// putProfiles gives users u0.. a profile with an email address (when email) and one
// Android device (when push), each channel switched as asked.
func putProfiles(ctx context.Context, nc *nats.Conn, users int, email, push bool) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	store, err := directory.NewStore(ctx, js, directory.Config{})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range users {
		g.Go(func() error {
			u := userName(i)
			p := directory.Profile{Name: "User " + u, Locale: "en", Channels: directory.Channels{Email: email, Push: push}, Devices: []directory.Device{}}
			if email {
				p.Email = u + "@example.com"
			}
			if push {
				p.Devices = []directory.Device{{Token: "tok-" + u, Platform: directory.Android}}
			}
			_, _, err := store.Put(gctx, benchAccount, u, p)
			return err
		})
	}
	return g.Wait()
}

// waitProfiles sends one add_error to the last of users, again every 2 s, until
// one arrives: the daemon's directory cache follows the profiles' bucket a moment
// after they are written, and an event routed before it has the profile is
// skipped (no address, no device) and never arrives.
func (h *harness) waitProfiles(ctx context.Context, cur *current, nc *nats.Conn, users int, consumers ...string) error {
	for range 30 {
		p := cur.begin("warm", 0)
		msg := nats.NewMsg(events.SubjectPrefix + "." + benchAccount + "." + userName(users-1) + "." + string(events.AddError))
		_, id := p.id(time.Now())
		msg.Header.Set(jetstream.MsgIDHeader, id)
		msg.Data = []byte(durableBody)
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			return err
		}
		deadline := time.Now().Add(2 * time.Second)
		for p.arrived.Load() == 0 && time.Now().Before(deadline) {
			if err := settle(ctx, 10*time.Millisecond); err != nil {
				return err
			}
		}
		cur.end()
		if p.arrived.Load() > 0 {
			return waitIdle(ctx, nc, dispatcher.StreamName, consumers...)
		}
	}
	return errors.New("warm-up: no event to the last user arrived in 60 s")
}
