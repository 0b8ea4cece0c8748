package main

// The picture of the dashboard in docs/dashboard.png. Grafana is not installable
// here, so this draws a stand-in: a real Prometheus (Debian's prometheus package)
// scrapes a real dispatcher driven by a bounded load on the loopback, the
// dashboard's own PromQL expressions are run against Prometheus's HTTP API, and the
// answers are drawn as inline SVG charts laid out on the dashboard's grid, then
// screenshot with headless Chromium. Grafana itself draws the same queries
// differently; the picture says so.
//
//	NOTIFY_WRITE_DASHBOARD=1 go test ./cmd/dispatcher -run TestWriteDashboardPicture -timeout 10m

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/channels/email/smtptest"
	"github.com/kommo-notify/notify/channels/push/fcmemu"
	"github.com/kommo-notify/notify/events/token"
)

const (
	pictureScrape = 2 * time.Second // Prometheus's scrape interval in the picture run
	pictureStep   = 2 * time.Second // the query step
	// Grafana's $__rate_interval: max(4 x scrape interval, step + scrape interval).
	pictureRateInterval = "8s"
	pictureLoad         = 3 * time.Minute // how long the load runs
	pictureUsers        = 20
	pictureTabs         = 30
	pictureSecret       = "dashboard-picture-secret-0123456789abcdef"
	pictureAPIKey       = "picture-api-key"
	pictureAdminKey     = "picture-admin-key"
)

func TestWriteDashboardPicture(t *testing.T) {
	if os.Getenv("NOTIFY_WRITE_DASHBOARD") != "1" {
		t.Skip("set NOTIFY_WRITE_DASHBOARD=1 to draw docs/dashboard.png (about four minutes, needs prometheus and chromium)")
	}
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed (apt-get install -y prometheus)")
	}
	browser := chromium(t)
	dash := loadDashboard(t)

	// The dispatcher with every channel on: a real SMTP server and the FCM emulator,
	// both in this process, both with scripted failures during the run.
	sink := smtptest.Start(t)
	emu := fcmemu.New(fcmemu.Options{Project: "notify-dev", Latency: 40 * time.Millisecond})
	fcm := httptest.NewServer(emu)
	t.Cleanup(fcm.Close)
	sa, err := fcmemu.NewServiceAccount("notify-dev", fcm.URL+"/token")
	if err != nil {
		t.Fatal(err)
	}
	emu.Trust(sa.Email, &sa.Key.PublicKey)
	env := embeddedEnv(t)
	for k, v := range map[string]string{
		"SMTP_URL":             fmt.Sprintf("smtp://%s?tls=none", sink.Addr()),
		"NOTIFY_MAIL_FROM":     "Kommo Notifications <noreply@notify.example>",
		"FCM_CREDENTIALS_FILE": writeKey(t, sa),
		"FCM_ENDPOINT":         fcm.URL,
		"NOTIFY_JWT_SECRET":    pictureSecret,
		"NOTIFY_API_KEYS":      pictureAPIKey,
		"NOTIFY_ADMIN_KEYS":    pictureAdminKey,
		"NOTIFY_LOG_LEVEL":     "error",
	} {
		env[k] = v
	}
	d := startDaemon(t, env)
	prom := startPrometheus(t, promBin, d)

	from := prom.waitUp(t)
	loadStart := time.Now()
	driveLoad(t, d, emu, sink)
	// The picture ends with the load, as the dashboard looks while traffic runs; the
	// scrape after the end completes the last rate window.
	loadEnd := time.Now()
	to := loadEnd.Add(-pictureScrape / 2)
	prom.waitSample(t, loadEnd)
	t.Logf("load from %s to %s; querying %s to %s", loadStart.Format(time.TimeOnly), loadEnd.Format(time.TimeOnly), from.Format(time.TimeOnly), to.Format(time.TimeOnly))

	page := renderPicture(t, dash, prom, from, to)
	dir := t.TempDir()
	pagePath := filepath.Join(dir, "dashboard.html")
	if err := os.WriteFile(pagePath, []byte(page.html), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := filepath.Abs(repoFile("docs", "dashboard.png"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--no-first-run", "--hide-scrollbars",
		"--force-device-scale-factor=1", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+out, fmt.Sprintf("--window-size=%d,%d", page.width, page.height),
		"file://"+pagePath)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	t.Logf("wrote %s (%dx%d); the page is %s", out, page.width, page.height, pagePath)
}

// promServer is a Prometheus server started for the picture.
type promServer struct {
	url     string
	version string
	stderr  *syncBuffer
}

// startPrometheus runs Prometheus on the loopback, scraping the daemon every
// pictureScrape with the job of deploy/prometheus/prometheus.yml and evaluating the
// alert rules, with its storage in a temporary directory.
func startPrometheus(t *testing.T, bin string, d *daemon) *promServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	target := strings.TrimPrefix(d.ep.HTTP, "http://")
	rules, err := filepath.Abs(repoFile(alertsFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: 1s
  evaluation_interval: %s
rule_files: [%q]
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
`, pictureScrape, pictureScrape, rules, dispatcherJob, target)
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &promServer{url: "http://" + addr, stderr: &syncBuffer{}}
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+configPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	return p
}

// promResult is one series of a query's answer.
type promResult struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"` // [unix seconds, "value"]
	Value  [2]any            `json:"value"`
}

func (p *promServer) api(ctx context.Context, path string, q url.Values) ([]promResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+path, strings.NewReader(q.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promResult `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s %s: %s", path, q.Get("query"), body.Error)
	}
	return body.Data.Result, nil
}

// instant is the value of a one-series instant query, NaN without one.
func (p *promServer) instant(ctx context.Context, query string) (float64, error) {
	res, err := p.api(ctx, "/api/v1/query", url.Values{"query": {query}})
	if err != nil || len(res) == 0 {
		return math.NaN(), err
	}
	s, _ := res[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

// waitFor polls cond until it is true, for at most within.
func (p *promServer) waitFor(t *testing.T, within time.Duration, what string, cond func(context.Context) bool) {
	t.Helper()
	deadline := time.After(within)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for !cond(t.Context()) {
		select {
		case <-deadline:
			t.Fatalf("prometheus: %s within %s\n%s", what, within, p.stderr.String())
		case <-tick.C:
		}
	}
}

// waitUp waits for the first successful scrape of the dispatcher and returns its time.
func (p *promServer) waitUp(t *testing.T) time.Time {
	t.Helper()
	var first float64
	p.waitFor(t, time.Minute, "no successful scrape of the dispatcher", func(ctx context.Context) bool {
		v, err := p.instant(ctx, fmt.Sprintf(`timestamp(up{job=%q} == 1)`, dispatcherJob))
		first = v
		return err == nil && !math.IsNaN(v)
	})
	p.version = p.buildVersion()
	return time.UnixMilli(int64(first * 1000))
}

// buildVersion is the server's version, for the caption.
func (p *promServer) buildVersion() string {
	resp, err := http.Get(p.url + "/api/v1/status/buildinfo")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct {
		Data struct{ Version string } `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Data.Version
}

// waitSample waits until Prometheus holds a scrape of the dispatcher taken at or
// after at.
func (p *promServer) waitSample(t *testing.T, at time.Time) {
	t.Helper()
	p.waitFor(t, time.Minute, "no recent scrape of the dispatcher", func(ctx context.Context) bool {
		v, err := p.instant(ctx, fmt.Sprintf(`timestamp(up{job=%q})`, dispatcherJob))
		return err == nil && v >= float64(at.UnixMilli())/1000
	})
}

// driveLoad sends a bounded, varied load for pictureLoad: pop-ups and durable events
// to a directory of users with email and a device, tabs that connect (some with
// tokens that expire), refused requests, a burst, and failures scripted into the
// SMTP server and the FCM emulator, so every panel has something to show.
func driveLoad(t *testing.T, d *daemon, emu *fcmemu.Emulator, sink *smtptest.Server) {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 42)) // the same run every time
	signer, err := token.NewSigner([]byte(pictureSecret))
	if err != nil {
		t.Fatal(err)
	}
	for u := 1; u <= pictureUsers; u++ {
		pictureAPI(t, d, http.MethodPut, fmt.Sprintf("/api/v1/accounts/acme/users/%d", u), pictureAdminKey,
			fmt.Sprintf(`{"email":"user%d@example.com","name":"User %d","locale":"en"}`, u, u), http.StatusCreated)
		pictureAPI(t, d, http.MethodPost, fmt.Sprintf("/api/v1/accounts/acme/users/%d/devices", u), pictureAdminKey,
			fmt.Sprintf(`{"token":"device-%d","platform":"android"}`, u), http.StatusCreated)
	}
	nc, err := nats.Connect(d.ep.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	ctx, cancel := context.WithCancel(t.Context())
	var tabs sync.WaitGroup
	defer func() {
		cancel()
		tabs.Wait()
	}()
	// Tab i belongs to user i%pictureUsers+1; every third one has a token of 30 to 50
	// seconds and reconnects with a new one when the server closes it.
	openTab := func(i int) {
		ttl := time.Hour
		if i%3 == 0 {
			ttl = time.Duration(30+rng.IntN(20)) * time.Second
		}
		tok, err := signer.Mint("acme", strconv.Itoa(i%pictureUsers+1), ttl)
		if err != nil {
			t.Error(err)
			return
		}
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(d.ep.HTTP, "http")+"/ws?token="+tok, nil)
		if err != nil {
			return // the run is ending
		}
		ws.SetReadLimit(1 << 20)
		tabs.Go(func() {
			defer ws.CloseNow()
			for {
				if _, _, err := ws.Read(ctx); err != nil {
					return
				}
			}
		})
	}
	expired := make(chan int, pictureTabs)
	openExpiring := func(i int) {
		openTab(i)
		if i%3 == 0 {
			// Reopen once the token has run out (the server closes the socket then).
			tabs.Go(func() {
				select {
				case <-ctx.Done():
				case <-time.After(55 * time.Second):
					expired <- i
				}
			})
		}
	}

	publish := func(subject, body string) {
		if err := nc.Publish(subject, []byte(body)); err != nil {
			t.Error(err)
		}
	}
	user := func() string { return strconv.Itoa(rng.IntN(pictureUsers) + 1) }
	const tick = 100 * time.Millisecond
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	opened, dead := 0, 0
	for n := range int(pictureLoad / tick) {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if n%20 == 0 && opened < pictureTabs {
			openExpiring(opened)
			opened++
		}
		select {
		case i := <-expired:
			openExpiring(i)
		default:
		}
		for range 1 + rng.IntN(3) {
			publish("notify.acme."+user()+".show_message", `{"header":"Warning","text":"Connection established"}`)
		}
		if n%10 == 0 {
			publish("notify.acme."+user()+".show_notification", `{"text":{"header":"Incoming call","text":"+1 (415) 523-7743"},"type":"call"}`)
		}
		if n%4 == 0 {
			if rng.IntN(2) == 0 {
				publish("notify.acme."+user()+".add_call", `{"text":"Call from +1 (415) 523-7743","from":"Jeremy Watts","to":"Jason Nash","element":{"id":18221265,"type":"contact"},"duration":250}`)
			} else {
				publish("notify.acme."+user()+".add_error", `{"header":"Error","text":"Failed to set the task! Contact not found!","link":"/contacts/list/?term=4951234567"}`)
			}
		}
		if n%100 == 50 {
			publish("notify.acme._all.add_error", `{"header":"Maintenance","text":"The CRM restarts at 22:00 UTC"}`)
		}
		if n%20 == 5 {
			pictureAPI(t, d, http.MethodPost, "/api/v1/notify/acme/"+user()+"/show_message", pictureAPIKey, `{"header":"no text"}`, http.StatusBadRequest)
		}
		if n%35 == 7 {
			pictureAPI(t, d, http.MethodPost, "/api/v1/notify/acme/"+user()+"/add_call", "wrong-key", `{"text":"x"}`, http.StatusUnauthorized)
		}
		if n%60 == 30 {
			publish("notify.acme."+user()+".add_error", `{"header":"an add_error without text"}`) // dead-lettered as invalid
		}
		if n%100 == 90 {
			// A phone whose app was uninstalled: FCM answers UNREGISTERED and it is pruned.
			dead++
			tok := fmt.Sprintf("dead-%d", dead)
			if err := emu.Fail(fcmemu.Rule{Token: tok, Error: fcmemu.Unregistered}); err != nil {
				t.Fatal(err)
			}
			pictureAPI(t, d, http.MethodPost, "/api/v1/accounts/acme/users/"+user()+"/devices", pictureAdminKey,
				fmt.Sprintf(`{"token":%q,"platform":"ios"}`, tok), http.StatusCreated)
		}
		switch n {
		case 600: // the SMTP server refuses ten recipients for good: dead letters
			faults := make([]smtptest.Fault, 10)
			for i := range faults {
				faults[i] = smtptest.Reject(smtptest.AtRcpt, 550)
			}
			sink.Script(faults...)
		case 750: // a burst of durable events: the consumers fall behind for a while
			for range 1200 {
				publish("notify.acme."+user()+".add_error", `{"header":"Import","text":"Row rejected"}`)
			}
		case 1100: // FCM is unavailable for a while: push retries
			if err := emu.Fail(fcmemu.Rule{Error: fcmemu.Unavailable, Times: 60}); err != nil {
				t.Fatal(err)
			}
		case 1250: // and the SMTP server answers 451 for a while: email retries
			faults := make([]smtptest.Fault, 30)
			for i := range faults {
				faults[i] = smtptest.Reject(smtptest.AtMail, 451)
			}
			sink.Script(faults...)
		}
	}
}

// pictureAPI makes one request of the dispatcher's HTTP API and checks its status.
func pictureAPI(t *testing.T, d *daemon, method, path, key, body string, want int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, d.ep.HTTP+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want && !(want == http.StatusCreated && resp.StatusCode == http.StatusOK) {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
}
