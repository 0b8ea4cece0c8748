package fcmemu

import (
	"crypto/rsa"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultKeep is how many received messages an emulator keeps by default.
const DefaultKeep = 10_000

// Options configure an Emulator. The zero value serves any project, at once, to
// access tokens minted by its own token endpoint.
type Options struct {
	// Project is the only project served; a request for another one is refused with
	// 403 PERMISSION_DENIED, as FCM refuses a project the credentials cannot reach.
	// Empty: every project.
	Project string
	// Latency is how long every messages:send waits before answering (FCM answers in
	// tens of milliseconds; the push benchmark uses 100 ms).
	Latency time.Duration
	// AccessTokens are bearer tokens accepted as they are, for a sender with a static
	// token source instead of a service account.
	AccessTokens []string
	// Accounts are service accounts (client_email to public key) whose JWT
	// assertions are verified by signature at the token endpoint.
	Accounts map[string]*rsa.PublicKey
	// Strict refuses assertions of accounts not in Accounts. Otherwise any
	// well-formed, unexpired assertion gets a token, as a test emulator should.
	Strict bool
	// Keep bounds the received messages held for Messages: DefaultKeep. Older ones
	// are forgotten (Stats still counts them), so a benchmark runs in bounded memory.
	Keep int
	// TokenTTL is the lifetime of the access tokens it mints: one hour, as Google's.
	TokenTTL time.Duration
	// Now is the clock of tokens and assertions: time.Now.
	Now func() time.Time
}

// Stats count the messages:send requests an emulator answered.
type Stats struct {
	Requests int `json:"requests"` // every messages:send request, refused ones included
	Accepted int `json:"accepted"` // messages accepted (validate_only ones excluded)
	Failed   int `json:"failed"`   // requests answered with an error
}

// Emulator is an FCM HTTP v1 endpoint in a process: the OAuth token endpoint a
// service account's JWT-bearer grant calls, messages:send with FCM's validation and
// error bodies, scripted failures, and an admin API listing what it received. It is
// an http.Handler, safe for concurrent use.
type Emulator struct {
	opts    Options
	mux     *http.ServeMux
	latency atomic.Int64 // time.Duration
	ids     atomic.Uint64

	authMu   sync.RWMutex
	accounts map[string]*rsa.PublicKey
	tokens   map[string]time.Time // access token to expiry; zero for static tokens

	mu       sync.Mutex
	rules    []*rule
	received []Received // a ring of opts.Keep, oldest at start once full
	start    int
	stats    Stats
}

var _ http.Handler = (*Emulator)(nil)

// New returns an emulator configured by opts.
func New(opts Options) *Emulator {
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Emulator{
		opts:     opts,
		accounts: make(map[string]*rsa.PublicKey),
		tokens:   make(map[string]time.Time),
	}
	for email, key := range opts.Accounts {
		e.accounts[email] = key
	}
	for _, t := range opts.AccessTokens {
		e.tokens[t] = time.Time{}
	}
	e.latency.Store(int64(opts.Latency))
	e.mux = e.routes()
	return e
}

// ServeHTTP serves the emulator's endpoints (see the package doc).
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// Handler is e as an http.Handler.
func (e *Emulator) Handler() http.Handler { return e }

func (e *Emulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", e.serveToken)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", e.serveSend)
	mux.HandleFunc("GET /emulator/messages", e.serveMessages)
	mux.HandleFunc("DELETE /emulator/messages", e.serveClearMessages)
	mux.HandleFunc("GET /emulator/rules", e.serveRules)
	mux.HandleFunc("POST /emulator/rules", e.serveAddRule)
	mux.HandleFunc("DELETE /emulator/rules", e.serveClearRules)
	mux.HandleFunc("PUT /emulator/latency", e.serveLatency)
	mux.HandleFunc("GET /emulator/stats", e.serveStats)
	mux.HandleFunc("POST /emulator/reset", e.serveReset)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "NOT_FOUND", "The requested URL "+r.URL.Path+" was not found on this server.")
	})
	return mux
}

// ConfigureServer lets s speak HTTP/2 without TLS (h2c with prior knowledge) beside
// HTTP/1.1, with room for 1,000 concurrent streams per connection: FCM is an HTTP/2
// service, and a sender multiplexing its requests should find the same here.
func ConfigureServer(s *http.Server) {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s.Protocols = &p
	if s.HTTP2 == nil {
		s.HTTP2 = &http.HTTP2Config{}
	}
	s.HTTP2.MaxConcurrentStreams = 1000
}

// Fail adds a scripted failure.
func (e *Emulator) Fail(r Rule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = append(e.rules, &rule{Rule: r})
	return nil
}

// ClearRules removes every scripted failure.
func (e *Emulator) ClearRules() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = nil
}

// Rules lists the scripted failures in the order they apply.
func (e *Emulator) Rules() []Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.Rule
	}
	return out
}

// SetLatency changes how long every messages:send waits before answering.
func (e *Emulator) SetLatency(d time.Duration) { e.latency.Store(int64(max(d, 0))) }

// Trust registers a service account: its assertions are verified with key.
func (e *Emulator) Trust(email string, key *rsa.PublicKey) {
	e.authMu.Lock()
	defer e.authMu.Unlock()
	e.accounts[email] = key
}

// Messages returns the accepted messages still kept, oldest first.
func (e *Emulator) Messages() []Received {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Concat(e.received[e.start:], e.received[:e.start])
}

// MessagesTo returns the kept messages sent to token, oldest first.
func (e *Emulator) MessagesTo(token string) []Received {
	return slices.DeleteFunc(e.Messages(), func(m Received) bool { return m.Message.Token != token })
}

// Stats returns the counts of messages:send requests.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// ClearMessages forgets the received messages.
func (e *Emulator) ClearMessages() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.received, e.start = nil, 0
}

// Reset forgets the received messages, the scripted failures and the stats. Access
// tokens already minted stay valid: a sender caches its token for an hour.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.received, e.start, e.rules, e.stats = nil, 0, nil, Stats{}
}

// record keeps an accepted message, dropping the oldest beyond opts.Keep.
func (e *Emulator) record(m Received) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.Accepted++
	if len(e.received) < e.opts.Keep {
		e.received = append(e.received, m)
		return
	}
	e.received[e.start] = m
	e.start = (e.start + 1) % len(e.received)
}

// scripted counts a request to token against the rules and returns the failing one.
func (e *Emulator) scripted(token string) (Rule, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var hit *rule
	for _, r := range e.rules {
		if r.match(token) && hit == nil {
			hit = r
		}
	}
	if hit == nil {
		return Rule{}, false
	}
	return hit.Rule, true
}

// count records one messages:send request and whether it was refused.
func (e *Emulator) count(failed bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.Requests++
	if failed {
		e.stats.Failed++
	}
}
