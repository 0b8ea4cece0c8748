package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels/directory"
)

const profileUsage = `Usage: notify profile get|put|delete --account A --user U ['<json>' | -]

Reads and changes a user's recipient profile in the recipient directory (the KV
bucket NOTIFY_DIRECTORY), directly through NATS, with the validation of the
dispatcher's admin API (PUT/GET/DELETE /api/v1/accounts/{account}/users/{user}).
Dispatchers see a change within milliseconds. The bucket exists once a dispatcher
has started.

  get     prints the profile as one JSON line
  put     replaces the profile with the JSON payload (the last argument; "-" or none
          reads standard input) and prints it as stored. Absent members take their
          defaults (both channels on); absent "devices" keeps the registered devices.
  delete  removes the profile

Profile: {"email","name","locale","channels":{"email":bool,"push":bool},
          "devices":[{"token","platform"}]}; unknown members are refused.

Environment: NATS_URL (default nats://127.0.0.1:4222), NATS_CREDS. Flags beat the
environment.

Example:
  notify profile put --account acme --user 42 '{"email":"ann@example.com","locale":"en"}'
`

const deviceUsage = `Usage: notify device add|remove --account A --user U --token T [--platform android]

Registers or drops one push token of a user in the recipient directory (the KV
bucket NOTIFY_DIRECTORY), directly through NATS, like the admin API's
POST and DELETE /api/v1/accounts/{account}/users/{user}/devices.

  add     registers the token (a user without a profile gets one with both channels
          on; a known token moves to the newest place) and prints the profile
  remove  drops the token; a token that is not there is an error (exit 1)

Environment: NATS_URL (default nats://127.0.0.1:4222), NATS_CREDS. Flags beat the
environment.

Example:
  notify device add --account acme --user 42 --token "$FCM_TOKEN" --platform ios
`

// directoryFlags are the flags the directory commands share.
type directoryFlags struct {
	account, user string
	timeout       time.Duration
	natsURL       string
	creds         string
}

func (a *app) directoryFlagSet(name string) (*flag.FlagSet, *directoryFlags) {
	f := &directoryFlags{}
	fs := newFlagSet(name)
	fs.StringVar(&f.account, "account", "", "the account (required)")
	fs.StringVar(&f.user, "user", "", "the user (required)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for NATS")
	fs.StringVar(&f.natsURL, "nats-url", "", "NATS server URL(s), comma-separated (env NATS_URL, default "+defaultNATSURL+")")
	fs.StringVar(&f.creds, "creds", "", "NATS credentials file (env NATS_CREDS)")
	return fs, f
}

// resolve checks the shared flags and fills in the environment; the account and
// user are checked before anything connects, so a typo is named at once.
func (a *app) resolve(f *directoryFlags) error {
	if f.account == "" || f.user == "" {
		return usagef("--account and --user are required")
	}
	if f.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	f.natsURL = cmp.Or(f.natsURL, a.getenv("NATS_URL"), defaultNATSURL)
	f.creds = cmp.Or(f.creds, a.getenv("NATS_CREDS"))
	return directory.CheckAddress(f.account, f.user)
}

// openDirectory connects and binds to the dispatcher's bucket; close ends the
// connection.
func openDirectory(ctx context.Context, f *directoryFlags) (_ *directory.Store, closeConn func(), _ error) {
	nc, err := connect(f.natsURL, f.creds, f.timeout)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	store, err := directory.OpenStore(ctx, js, directory.Config{})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return store, nc.Close, nil
}

func (a *app) profile(ctx context.Context, args []string) error {
	fs, f := a.directoryFlagSet("profile")
	positional, err := a.parseFlags(fs, profileUsage, args)
	if err != nil {
		return err
	}
	if len(positional) == 0 {
		return usagef("missing the action: get, put or delete")
	}
	action, rest := positional[0], positional[1:]
	var p directory.Profile
	switch {
	case action != "get" && action != "put" && action != "delete":
		return usagef("unknown action %q: get, put or delete", action)
	case action == "put" && len(rest) > 1:
		return usagef("too many arguments: give the profile as one argument (quote it)")
	case action != "put" && len(rest) > 0:
		return usagef("unexpected argument %q", rest[0])
	}
	if err := a.resolve(f); err != nil {
		return err
	}
	if action == "put" {
		arg := "-"
		if len(rest) == 1 {
			arg = rest[0]
		}
		body, err := a.readPayload(arg)
		if err != nil {
			return err
		}
		if p, err = directory.ParseProfile(body); err != nil {
			return err
		}
		if err := p.Validate(); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	store, closeConn, err := openDirectory(ctx, f)
	if err != nil {
		return err
	}
	defer closeConn()
	switch action {
	case "get":
		p, err = store.Get(ctx, f.account, f.user)
	case "put":
		p, _, err = store.Put(ctx, f.account, f.user, p)
	case "delete":
		err = store.Delete(ctx, f.account, f.user)
	}
	if errors.Is(err, directory.ErrNotFound) {
		return fmt.Errorf("no profile for %s/%s", f.account, f.user)
	}
	if err != nil || action == "delete" {
		return err
	}
	return json.NewEncoder(a.stdout).Encode(p)
}

func (a *app) device(ctx context.Context, args []string) error {
	fs, f := a.directoryFlagSet("device")
	d := directory.Device{}
	fs.StringVar(&d.Token, "token", "", "the push token (required)")
	fs.StringVar(&d.Platform, "platform", directory.Android, "the device's platform for add: android, ios or web")
	positional, err := a.parseFlags(fs, deviceUsage, args)
	if err != nil {
		return err
	}
	switch {
	case len(positional) == 0:
		return usagef("missing the action: add or remove")
	case positional[0] != "add" && positional[0] != "remove":
		return usagef("unknown action %q: add or remove", positional[0])
	case len(positional) > 1:
		return usagef("unexpected argument %q", positional[1])
	case d.Token == "":
		return usagef("--token is required")
	}
	if err := a.resolve(f); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	store, closeConn, err := openDirectory(ctx, f)
	if err != nil {
		return err
	}
	defer closeConn()
	if positional[0] == "remove" {
		removed, err := store.RemoveDevice(ctx, f.account, f.user, d.Token)
		if err == nil && !removed {
			// The token is not echoed: it is a credential of the user's phone.
			return fmt.Errorf("no such device for %s/%s", f.account, f.user)
		}
		return err
	}
	p, _, err := store.AddDevice(ctx, f.account, f.user, d)
	if err != nil {
		return err
	}
	return json.NewEncoder(a.stdout).Encode(p)
}
