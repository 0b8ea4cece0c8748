package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultBucket     = "NOTIFY_DIRECTORY"
	DefaultMaxDevices = 20
)

// maxValueSize bounds one stored profile: the largest valid profile (MaxDevices
// tokens of MaxTokenLen) is about 85 KiB at the default limit.
const maxValueSize = 1 << 20

// maxAttempts bounds the optimistic retries of one read-modify-write. Each conflict
// means another writer succeeded, so with n writers on one key the last one is done
// after n attempts; the bound only stops a livelock.
const maxAttempts = 100

var (
	// ErrNotFound is a user without a profile.
	ErrNotFound = errors.New("directory: no such profile")
	// ErrConflict is a write that lost to concurrent writers maxAttempts times in a row.
	ErrConflict = errors.New("directory: too many concurrent writes to one profile")
)

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// Bucket is the KV bucket: DefaultBucket.
	Bucket string
	// Replicas of the bucket: 1, 3 or 5; 0 means 1. The daemon picks as for its
	// streams (3 on a cluster).
	Replicas int
	// MaxDevices per user: DefaultMaxDevices. Registering one more drops the oldest.
	MaxDevices int
	// Now is the clock of device registrations: time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxDevices == 0 {
		c.MaxDevices = DefaultMaxDevices
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Replicas != 0 && c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("replicas must be 1, 3 or 5, not %d", c.Replicas))
	}
	if c.MaxDevices < 0 {
		errs = append(errs, errors.New("max devices may not be negative"))
	}
	return errors.Join(errs...)
}

// Store keeps profiles in a JetStream KV bucket, one key per user:
// <account>.<user>. Account and user names are [A-Za-z0-9_-]{1,64}, all valid in a
// key, and the dot makes the account a subject token, so "acme.>" watches one
// account. Devices live inside the profile's value, so a push token never becomes a
// key. It is safe for concurrent use, also by several processes: every
// read-modify-write is a compare-and-set on the key's revision, retried on conflict.
type Store struct {
	kv  jetstream.KeyValue
	js  jetstream.JetStream
	cfg Config
}

// NewStore creates the bucket, or updates it to cfg, and returns a store on it. Every
// dispatcher runs it at start, like the stream provisioning, so it is idempotent.
func NewStore(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "Recipient profiles: email, locale, channel switches and push devices, one key per <account>.<user>",
		// One value per key: a replaced profile, and a deleted one's personal data,
		// are gone from the stream, not kept as history.
		History:      1,
		MaxValueSize: maxValueSize,
		Storage:      jetstream.FileStorage,
		Replicas:     cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("directory: provision bucket %s: %w", cfg.Bucket, err)
	}
	return &Store{kv: kv, js: js, cfg: cfg}, nil
}

// OpenStore binds to the bucket a dispatcher created, without changing its settings:
// for tools (the notify CLI) that must not reconfigure a deployment. cfg.Replicas is
// ignored.
func OpenStore(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("directory: no bucket %s: start the dispatcher once to create it", cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("directory: open bucket %s: %w", cfg.Bucket, err)
	}
	return &Store{kv: kv, js: js, cfg: cfg}, nil
}

// Bucket is the name of the KV bucket.
func (s *Store) Bucket() string { return s.cfg.Bucket }

func key(account, user string) string { return account + "." + user }

// Get returns the profile of account/user, or ErrNotFound.
func (s *Store) Get(ctx context.Context, account, user string) (Profile, error) {
	if err := CheckAddress(account, user); err != nil {
		return Profile{}, err
	}
	p, _, err := s.read(ctx, key(account, user))
	return p, err
}

// Put stores p as the profile of account/user, replacing the one there, and returns
// it as stored; created says there was none. p.Devices nil keeps the devices already
// registered (devices are the mobile app's, a profile sync is the CRM's); an empty
// slice removes them. A validation error is an *events.Error naming the field.
func (s *Store) Put(ctx context.Context, account, user string, p Profile) (_ Profile, created bool, _ error) {
	if err := CheckAddress(account, user); err != nil {
		return Profile{}, false, err
	}
	if err := p.normalize(s.cfg.Now(), s.cfg.MaxDevices); err != nil {
		return Profile{}, false, err
	}
	k := key(account, user)
	keep := p.Devices == nil
	// Create first: it is atomic on its own, and a new profile is the common case
	// of a sync job.
	fresh := p.clone()
	err := s.create(ctx, k, fresh)
	if err == nil {
		return fresh, true, nil
	}
	if !conflict(err) {
		return Profile{}, false, err
	}
	stored, existed, err := s.modify(ctx, k, func(cur *Profile, _ bool) (bool, error) {
		devices := cur.Devices
		*cur = p.clone()
		if keep {
			cur.Devices = slices.Clone(devices)
		}
		return true, nil
	})
	return stored, !existed, err
}

// Delete removes the profile of account/user, or returns ErrNotFound. The key is
// purged, so the profile's personal data leaves the stream at once.
func (s *Store) Delete(ctx context.Context, account, user string) error {
	if err := CheckAddress(account, user); err != nil {
		return err
	}
	k := key(account, user)
	for attempt := 1; ; attempt++ {
		_, rev, err := s.read(ctx, k)
		if err != nil {
			return err
		}
		err = s.kv.Purge(ctx, k, jetstream.LastRevision(rev))
		if err == nil {
			return nil
		}
		if err := s.retry(ctx, k, attempt, fmt.Errorf("directory: purge %s: %w", k, err)); err != nil {
			return err
		}
	}
}

// AddDevice registers a push device for account/user and returns the profile. A user
// without a profile gets one with the default switches: a phone may register before
// the CRM syncs its user, and the token must not be lost. A token already registered
// is moved to the newest place with d's platform and the current time (added is
// false then); past MaxDevices, the oldest device is dropped.
func (s *Store) AddDevice(ctx context.Context, account, user string, d Device) (_ Profile, added bool, _ error) {
	if err := CheckAddress(account, user); err != nil {
		return Profile{}, false, err
	}
	d.AddedAt = time.Time{} // registration time is the server's
	if err := d.normalize("", s.cfg.Now()); err != nil {
		return Profile{}, false, err
	}
	p, _, err := s.modify(ctx, key(account, user), func(p *Profile, exists bool) (bool, error) {
		if !exists {
			p.Channels = DefaultChannels
		}
		n := len(p.Devices)
		p.Devices = slices.DeleteFunc(p.Devices, func(old Device) bool { return old.Token == d.Token })
		added = len(p.Devices) == n
		p.Devices = arrange(append(p.Devices, d), s.cfg.MaxDevices)
		return true, nil
	})
	return p, added, err
}

// RemoveDevice drops a push token from account/user's profile and reports whether it
// was there. A missing profile or token is no error: the push channel prunes tokens
// the provider refused, possibly twice.
func (s *Store) RemoveDevice(ctx context.Context, account, user, token string) (removed bool, _ error) {
	if err := CheckAddress(account, user); err != nil {
		return false, err
	}
	_, _, err := s.modify(ctx, key(account, user), func(p *Profile, exists bool) (bool, error) {
		n := len(p.Devices)
		p.Devices = slices.DeleteFunc(p.Devices, func(d Device) bool { return d.Token == token })
		removed = len(p.Devices) < n
		return removed, nil
	})
	return removed, err
}

// SetChannels sets account/user's channel switches, or returns ErrNotFound.
func (s *Store) SetChannels(ctx context.Context, account, user string, c Channels) (Profile, error) {
	if err := CheckAddress(account, user); err != nil {
		return Profile{}, err
	}
	p, _, err := s.modify(ctx, key(account, user), func(p *Profile, exists bool) (bool, error) {
		if !exists {
			return false, ErrNotFound
		}
		p.Channels = c
		return true, nil
	})
	return p, err
}

// modify is one read-modify-write of key under optimistic concurrency: fn changes the
// stored profile (a zero one with exists false when there is none) and says whether
// to write it. The write succeeds only if the key still has the revision that was
// read (or, for a new key, still does not exist); otherwise another writer got there
// first, and modify reads again and reapplies fn. So concurrent writers never lose
// each other's changes, a device registration included.
func (s *Store) modify(ctx context.Context, k string, fn func(p *Profile, exists bool) (bool, error)) (_ Profile, existed bool, _ error) {
	for attempt := 1; ; attempt++ {
		p, rev, err := s.read(ctx, k)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Profile{}, false, err
		}
		write, err := fn(&p, exists)
		if err != nil || !write {
			return p.clone(), exists, err
		}
		p = p.clone()
		if exists {
			err = s.update(ctx, k, p, rev)
		} else {
			err = s.create(ctx, k, p)
		}
		if err == nil {
			return p, exists, nil
		}
		if err := s.retry(ctx, k, attempt, err); err != nil {
			return Profile{}, false, err
		}
	}
}

// retry decides after a failed conditional write: nil to try again (after a short
// random pause, so colliding writers spread out), or the error to return.
func (s *Store) retry(ctx context.Context, k string, attempt int, err error) error {
	if !conflict(err) {
		return err
	}
	if attempt >= maxAttempts {
		return fmt.Errorf("%w: %s after %d attempts", ErrConflict, k, attempt)
	}
	pause := time.Duration(rand.N(min(attempt, 16))) * time.Millisecond
	if pause == 0 {
		return nil
	}
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// conflict reports a lost compare-and-set: the key exists (Create) or has moved on
// (Update, Purge with LastRevision). ErrKeyRevisionMismatch also matches ErrKeyExists;
// both are named for the reader.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// read returns the stored profile of k with its revision, or ErrNotFound.
func (s *Store) read(ctx context.Context, k string) (Profile, uint64, error) {
	entry, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Profile{}, 0, ErrNotFound
	}
	if err != nil {
		return Profile{}, 0, fmt.Errorf("directory: get %s: %w", k, err)
	}
	p, err := decodeStored(entry.Value())
	if err != nil {
		return Profile{}, 0, fmt.Errorf("directory: %s: %w", k, err)
	}
	return p, entry.Revision(), nil
}

func (s *Store) create(ctx context.Context, k string, p Profile) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("directory: encode %s: %w", k, err)
	}
	if _, err := s.kv.Create(ctx, k, b); err != nil {
		return fmt.Errorf("directory: create %s: %w", k, err)
	}
	return nil
}

func (s *Store) update(ctx context.Context, k string, p Profile, rev uint64) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("directory: encode %s: %w", k, err)
	}
	if _, err := s.kv.Update(ctx, k, b, rev); err != nil {
		return fmt.Errorf("directory: update %s: %w", k, err)
	}
	return nil
}

// decodeStored reads a value this package wrote. It is not validated again: only a
// Store writes the bucket.
func decodeStored(b []byte) (Profile, error) {
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return Profile{}, fmt.Errorf("decode profile: %w", err)
	}
	return p.clone(), nil
}
