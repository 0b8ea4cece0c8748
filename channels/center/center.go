package center

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
)

// Store is the notification center: the channel that keeps add_error and add_call
// for each recipient, and the store behind the center's HTTP API and the websocket
// hub's hello and resume. It is safe for concurrent use, by any number of
// dispatchers at once.
type Store struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream
	states    jetstream.KeyValue
	ids       jetstream.KeyValue
	directGet string // the stream's direct get subject
	getAPI    string // the stream leader's message get subject
	deleteAPI string // the stream's message delete subject
	pub       *publisher
	idPut     string // the id bucket's put subject prefix: $KV.<bucket>.
	statePut  string // the state bucket's
	recent    stateCache
	log       *slog.Logger
}

var (
	_ channels.Channel = (*Store)(nil)
	_ channels.Runner  = (*Store)(nil)
)

// New checks cfg, creates or updates the center's stream and buckets, and returns
// the store. It is safe to run from any number of dispatchers at once.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("center: jetstream: %w", err)
	}
	s := &Store{
		cfg:       cfg,
		nc:        cfg.Conn,
		js:        js,
		directGet: "$JS.API.DIRECT.GET." + StreamName,
		getAPI:    "$JS.API.STREAM.MSG.GET." + StreamName,
		deleteAPI: "$JS.API.STREAM.MSG.DELETE." + StreamName,
		idPut:     "$KV." + IDBucket + ".",
		statePut:  "$KV." + StateBucket + ".",
		log:       cfg.Logger.With("channel", channels.Center),
	}
	s.pub = newPublisher(cfg.Conn, s.log)
	if err := s.provision(ctx); err != nil {
		return nil, fmt.Errorf("center: provision: %w", err)
	}
	return s, nil
}

// provision creates or updates the stream of items and the two buckets. The
// stream's own MaxAge is a safety net at twice the retention: retention itself is
// the application's (see Sweep), so that the counters see every eviction.
func (s *Store) provision(ctx context.Context) error {
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Notification center items: center.<account>.<user>",
		Subjects:    []string{SubjectPrefix + ".*.*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		MaxAge:      2 * s.cfg.MaxAge,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", StreamName, err)
	}
	s.states, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "Notification center state per user: counters, read marks, index",
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("bucket %s: %w", StateBucket, err)
	}
	s.ids, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      IDBucket,
		Description: "Notification center items by event id, per user",
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		// An id outlives its item by a day, enough for the sweeper to evict the item
		// first; redeliveries stop long before (the NOTIFY stream keeps events 7 days).
		TTL: s.cfg.MaxAge + 24*time.Hour,
	})
	if err != nil {
		return fmt.Errorf("bucket %s: %w", IDBucket, err)
	}
	return nil
}

// Name is channels.Center.
func (*Store) Name() string { return channels.Center }

// Send stores the event as one item of the recipient's center and tells the
// recipient's tabs. A redelivered event never makes a second item. Errors are
// transient (NATS), except for an event that cannot be an item (permanent).
func (s *Store) Send(ctx context.Context, d *channels.Delivery) error {
	ev := d.Event
	u, err := newUser(ev.Account, d.User)
	if err != nil {
		return channels.Permanent(err)
	}
	created := s.cfg.Now().Unix()
	body, err := s.encodeItem(ev, created)
	if err != nil {
		return channels.Permanent(fmt.Errorf("center: %s: %w", ev.ID, err))
	}
	if err := s.add(ctx, u, body); err != nil {
		return fmt.Errorf("center: add %s: %w", ev.ID, err)
	}
	return nil
}

// Run evicts the items past MaxAge every SweepInterval until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("center sweep", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// user is one center: a recipient of one account.
type user struct{ account, user string }

var errBadUser = errors.New("center: account and user must match [A-Za-z0-9_-]{1,64}, and _all is no user")

func newUser(account, name string) (user, error) {
	if !events.ValidName(account) || !events.ValidName(name) || name == events.AllUsers {
		return user{}, errBadUser
	}
	return user{account: account, user: name}, nil
}

// subject is center.<account>.<user>: the user's items, in the order they came.
func (u user) subject() string { return SubjectPrefix + "." + u.account + "." + u.user }

// stateKey is <account>.<user> in the state bucket.
func (u user) stateKey() string { return u.account + "." + u.user }

// idKey is <account>.<user>.<id hash> in the id bucket: event ids may hold any
// printable character, keys only [-/_=.a-zA-Z0-9], so the id is hashed (128 bits of
// SHA-256, base64url).
func (u user) idKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return u.account + "." + u.user + "." + base64.RawURLEncoding.EncodeToString(sum[:16])
}

func formatSeq(seq uint64) []byte { return strconv.AppendUint(nil, seq, 10) }

func parseSeq(b []byte) (uint64, error) {
	seq, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("center: malformed id record %q", b)
	}
	return seq, nil
}
