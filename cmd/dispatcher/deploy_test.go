package main

// Checks of the deployment assets against the daemon: the Grafana dashboard and the
// alert rules use only metrics (and label values) that the daemon exports, and the
// metrics and the logs count what happened. deploy_assets_test.go checks the files
// themselves.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kommo-notify/notify/events/token"
)

// repoFile is a path in the repository, from this package's directory.
func repoFile(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

const (
	dashboardFile  = "deploy/grafana/dashboards/notify.json"
	alertsFile     = "deploy/prometheus/alerts.yml"
	alertTestsFile = "deploy/prometheus/alerts_test.yml"
	prometheusFile = "deploy/prometheus/prometheus.yml"
	composeFile    = "docker-compose.yml"

	// The scrape jobs of deploy/prometheus/prometheus.yml.
	dispatcherJob = "notify-dispatcher"
	natsJob       = "nats"
)

// contractMetrics are the metrics of CONTRACT section 6 with their types.
var contractMetrics = map[string]dto.MetricType{
	"notify_events_received_total":     dto.MetricType_COUNTER,
	"notify_events_rejected_total":     dto.MetricType_COUNTER,
	"notify_deliveries_total":          dto.MetricType_COUNTER,
	"notify_delivery_duration_seconds": dto.MetricType_HISTOGRAM,
	"notify_event_latency_seconds":     dto.MetricType_HISTOGRAM,
	"notify_ws_connections":            dto.MetricType_GAUGE,
	"notify_ws_dropped_total":          dto.MetricType_COUNTER,
	"notify_consumer_pending":          dto.MetricType_GAUGE,
	"notify_dlq_messages":              dto.MetricType_GAUGE,
	"notify_push_tokens_pruned_total":  dto.MetricType_COUNTER,
}

// metricLabels are the only label names a notify_ metric may carry: none of them can
// hold a user, a token, an address or an event id.
var metricLabels = []string{"type", "reason", "channel", "outcome", "consumer", "problem", "le"}

// scrape reads the daemon's /metrics.
func scrape(t *testing.T, d *daemon) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(d.ep.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// reference is one metric selector found in a PromQL expression.
type reference struct {
	name     string
	matchers []matcher
	where    string // the panel or rule, for messages
}

type matcher struct{ label, op, value string }

var (
	// A selector with label matchers, and one matcher inside it.
	selectorRE = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}`)
	matcherRE  = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	// Label lists of aggregations and vector matching: label names, not metrics.
	labelListRE = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	// Grafana's label_values(selector, label): the label is not a metric either.
	labelValuesRE = regexp.MustCompile(`label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)`)
	rangeRE       = regexp.MustCompile(`\[[^\]]*\]`)
	stringRE      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	identRE       = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// promqlKeywords are the words of PromQL that are not followed by a parenthesis.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
}

// metricReferences lists the metrics an expression reads, with their matchers:
// function and aggregation names (an identifier before a parenthesis), label lists,
// label values, ranges and keywords are not metrics.
func metricReferences(expr, where string) []reference {
	if m := labelValuesRE.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	var refs []reference
	for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
		ref := reference{name: m[1], where: where}
		for _, mm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			ref.matchers = append(ref.matchers, matcher{label: mm[1], op: mm[2], value: mm[3]})
		}
		refs = append(refs, ref)
	}
	bare := stringRE.ReplaceAllString(expr, `""`)
	bare = selectorRE.ReplaceAllString(bare, "$1")
	bare = labelListRE.ReplaceAllString(bare, " ")
	bare = rangeRE.ReplaceAllString(bare, " ")
	for _, loc := range identRE.FindAllStringIndex(bare, -1) {
		name := bare[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.$", rune(bare[loc[0]-1])) {
			continue // the unit of a number or duration (5m, 1e3), or a variable
		}
		if call := strings.HasPrefix(strings.TrimLeft(bare[loc[1]:], " \t\n"), "("); call || promqlKeywords[strings.ToLower(name)] {
			continue
		}
		if !slices.ContainsFunc(refs, func(r reference) bool { return r.name == name }) {
			refs = append(refs, reference{name: name, where: where})
		}
	}
	return refs
}

func TestMetricReferences(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (channel, le) (rate(notify_event_latency_seconds_bucket{job="x", instance=~"$instance"}[$__rate_interval]))`, []string{"notify_event_latency_seconds_bucket"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m])))`, []string{"a_bucket"}},
		{"max by (job) (delta(notify_dlq_messages[10m])) > 0", []string{"notify_dlq_messages"}},
		{"sum(rate(a[5m])) > 0\nand\nsum(rate(b{outcome=\"sent\"}[5m])) == 0", []string{"b", "a"}},
		{`x > 0.2 * sum without (instance) (y offset 5m) unless on (job) group_left (z) w`, []string{"x", "y", "w"}},
		{`up{job="notify-dispatcher"} == 0`, []string{"up"}},
		{`label_values(notify_events_received_total{job="notify-dispatcher"}, instance)`, []string{"notify_events_received_total"}},
		{`sum(rate(a{reason!="a_b{c}"}[1m]))`, []string{"a"}},
	} {
		var got []string
		for _, r := range metricReferences(tc.expr, "test") {
			got = append(got, r.name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("metricReferences(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// grafanaDashboard is the part of a dashboard JSON these tests read.
type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *grafanaDS      `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource *grafanaDS `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets     []grafanaTarget `json:"targets"`
	Panels      []grafanaPanel  `json:"panels"` // a collapsed row's
	FieldConfig struct {
		Defaults struct {
			Unit       string   `json:"unit"`
			Decimals   *int     `json:"decimals"`
			Min        *float64 `json:"min"`
			Thresholds struct {
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type grafanaTarget struct {
	RefID        string     `json:"refId"`
	Expr         string     `json:"expr"`
	LegendFormat string     `json:"legendFormat"`
	Datasource   *grafanaDS `json:"datasource"`
}

type grafanaDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	b, err := os.ReadFile(repoFile(dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// dataPanels are the dashboard's panels that query, rows' children included.
func (d grafanaDashboard) dataPanels() []grafanaPanel {
	var out []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// variableQuery is a query variable's PromQL, in either of Grafana's forms (a string,
// or the editor's object).
func variableQuery(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var q struct{ Query string }
	_ = json.Unmarshal(raw, &q)
	return q.Query
}

// alertRules reads the expr of every rule in alerts.yml. The file is YAML; its exprs
// are one line, or a literal block (|) indented below the key, which is all this
// reader handles: promtool checks the file as a whole.
func alertRules(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(repoFile(alertsFile))
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	lines := strings.Split(string(b), "\n")
	alert := ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(trimmed, "- alert:"); ok {
			alert = strings.TrimSpace(name)
			continue
		}
		expr, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		if alert == "" {
			t.Fatalf("%s:%d: expr outside an alert", alertsFile, i+1)
		}
		expr = strings.TrimSpace(expr)
		if expr == "|" || expr == "|-" {
			indent := len(line) - len(strings.TrimLeft(line, " "))
			var block []string
			for i+1 < len(lines) {
				next := lines[i+1]
				if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
					break
				}
				block = append(block, strings.TrimSpace(next))
				i++
			}
			expr = strings.TrimSpace(strings.Join(block, "\n"))
		}
		rules[alert] = expr
		alert = ""
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules found", alertsFile)
	}
	return rules
}

// isExporterMetric reports whether name comes from prometheus-nats-exporter.
func isExporterMetric(name string) bool {
	return strings.HasPrefix(name, "gnatsd_") || strings.HasPrefix(name, "jetstream_")
}

// prometheusMetrics are the series Prometheus makes for every target itself.
var prometheusMetrics = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// family resolves a referenced name to the exported family it reads: itself, or the
// histogram (or summary) behind a _bucket, _sum or _count series.
func family(families map[string]*dto.MetricFamily, name string) (*dto.MetricFamily, bool) {
	if f, ok := families[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := families[base]; ok {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				return f, true
			case dto.MetricType_SUMMARY:
				return f, suffix != "_bucket"
			}
		}
	}
	return nil, false
}

// hasLabelValue reports whether some series of f has label=value (le of a _bucket
// reference included).
func hasLabelValue(f *dto.MetricFamily, label, value string) bool {
	for _, m := range f.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && lp.GetValue() == value {
				return true
			}
		}
	}
	return false
}

// checkReference fails when ref reads a metric, or a label value, that the daemon does
// not export. job and instance are Prometheus's target labels; a value with a Grafana
// variable, and regular expressions, are not checked.
func checkReference(t *testing.T, families map[string]*dto.MetricFamily, ref reference) {
	t.Helper()
	f, ok := family(families, ref.name)
	if !ok {
		t.Errorf("%s: %s is not exported by the daemon", ref.where, ref.name)
		return
	}
	for _, m := range ref.matchers {
		if m.label == "job" || m.label == "instance" || m.op == "=~" || m.op == "!~" || strings.Contains(m.value, "$") {
			continue
		}
		if !hasLabelValue(f, m.label, m.value) {
			t.Errorf("%s: no series of %s has %s=%q at start: the selector %s%s%q never matches what the daemon exports",
				ref.where, f.GetName(), m.label, m.value, m.label, m.op, m.value)
		}
	}
}

// jobOf is the job a reference selects, empty when it selects none.
func jobOf(ref reference) string {
	for _, m := range ref.matchers {
		if m.label == "job" && m.op == "=" {
			return m.value
		}
	}
	return ""
}

// The contract's metrics, and every metric the dashboard and the alert rules read, are
// exported by a daemon that has just started, with every label value they select.
func TestDeployAssetsUseExportedMetrics(t *testing.T) {
	d := startDaemon(t, embeddedEnv(t))
	families := scrape(t, d)

	t.Run("contract", func(t *testing.T) {
		for name, typ := range contractMetrics {
			f, ok := families[name]
			switch {
			case !ok:
				t.Errorf("%s is not exported at start", name)
			case f.GetType() != typ:
				t.Errorf("%s is a %s, want a %s", name, f.GetType(), typ)
			case len(f.GetMetric()) == 0:
				t.Errorf("%s has no series at start", name)
			}
		}
		for name, f := range families {
			if !strings.HasPrefix(name, "notify_") {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, lp := range m.GetLabel() {
					if !slices.Contains(metricLabels, lp.GetName()) {
						t.Errorf("%s has the label %q: metric labels are limited to %v", name, lp.GetName(), metricLabels)
					}
				}
			}
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		dash := loadDashboard(t)
		var refs []reference
		for _, p := range dash.dataPanels() {
			var daemonRefs, exporterRefs int
			for _, tg := range p.Targets {
				for _, ref := range metricReferences(tg.Expr, fmt.Sprintf("panel %q %s", p.Title, tg.RefID)) {
					switch {
					case isExporterMetric(ref.name):
						// The NATS exporter's metrics are not the daemon's; they are read by
						// the NATS panels only, from the exporter's job.
						exporterRefs++
						if job := jobOf(ref); job != natsJob {
							t.Errorf("%s: %s is the NATS exporter's: select job=%q, not %q", ref.where, ref.name, natsJob, job)
						}
					default:
						daemonRefs++
						if job := jobOf(ref); job != dispatcherJob {
							t.Errorf("%s: %s is the dispatcher's: select job=%q, not %q", ref.where, ref.name, dispatcherJob, job)
						}
						refs = append(refs, ref)
					}
				}
			}
			if daemonRefs > 0 && exporterRefs > 0 {
				t.Errorf("panel %q mixes the dispatcher's metrics with the NATS exporter's", p.Title)
			}
		}
		for _, v := range dash.Templating.List {
			if v.Type == "query" {
				refs = append(refs, metricReferences(variableQuery(v.Query), "variable "+v.Name)...)
			}
		}
		if len(refs) == 0 {
			t.Fatal("no metric found in the dashboard's queries")
		}
		for _, ref := range refs {
			checkReference(t, families, ref)
		}
	})

	t.Run("alerts", func(t *testing.T) {
		for alert, expr := range alertRules(t) {
			refs := metricReferences(expr, "alert "+alert)
			if len(refs) == 0 {
				t.Errorf("alert %s: no metric found in %q", alert, expr)
			}
			for _, ref := range refs {
				if isExporterMetric(ref.name) {
					t.Errorf("%s reads %s: the alerts are the dispatcher's", ref.where, ref.name)
					continue
				}
				if prometheusMetrics[ref.name] {
					continue
				}
				checkReference(t, families, ref)
			}
		}
	})
}

// seriesValue is the value of the series of name with exactly labels: a counter's or
// a gauge's value, a histogram's count; -1 when there is no such series.
func seriesValue(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f, ok := families[name]
	if !ok {
		return -1
	}
	for _, m := range f.GetMetric() {
		if !labelsEqual(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func labelsEqual(m *dto.Metric, labels map[string]string) bool {
	if len(m.GetLabel()) != len(labels) {
		return false
	}
	for _, lp := range m.GetLabel() {
		if labels[lp.GetName()] != lp.GetValue() {
			return false
		}
	}
	return true
}

// waitMetrics scrapes until check finds nothing wrong, or fails with its last
// complaints after the deadline.
func waitMetrics(t *testing.T, d *daemon, within time.Duration, check func(map[string]*dto.MetricFamily) []string) {
	t.Helper()
	deadline := time.After(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		problems := check(scrape(t, d))
		if len(problems) == 0 {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("after %s:\n%s", within, strings.Join(problems, "\n"))
		case <-tick.C:
		}
	}
}

// The metrics count known traffic exactly: pop-ups and durable events received, one
// delivery per channel of the routing table (sent by the relay and the center,
// skipped by the disabled email and push channels), their send durations and
// latencies, and the open websocket. Every delivery log line names its event and
// channel, and no secret reaches the logs.
func TestDeployMetricsCountTraffic(t *testing.T) {
	const (
		secret   = "deploy-test-jwt-secret-0123456789abcdef"
		apiKey   = "deploy-test-api-key-5f2c"
		adminKey = "deploy-test-admin-key-9a1e"
		popups   = 5 // show_message
		durable  = 3 // add_error
	)
	env := embeddedEnv(t)
	env["NOTIFY_JWT_SECRET"] = secret
	env["NOTIFY_API_KEYS"] = apiKey
	env["NOTIFY_ADMIN_KEYS"] = adminKey
	env["NOTIFY_LOG_FORMAT"] = "json"
	env["NOTIFY_LOG_LEVEL"] = "debug"
	d := startDaemon(t, env)

	signer, err := token.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Mint("acme", "42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tab := dialTab(t, d, tok)
	waitMetrics(t, d, 10*time.Second, func(f map[string]*dto.MetricFamily) []string {
		if v := seriesValue(f, "notify_ws_connections", nil); v != 1 {
			return []string{fmt.Sprintf("notify_ws_connections = %v with a tab open, want 1", v)}
		}
		return nil
	})

	nc, err := nats.Connect(d.ep.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range popups {
		if err := nc.Publish("notify.acme.42.show_message", fmt.Appendf(nil, `{"header":"h","text":"pop %d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range durable {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := js.Publish(ctx, "notify.acme.42.add_error", fmt.Appendf(nil, `{"header":"Error","text":"durable %d"}`, i))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every event reaches the tab as a pop-up (the center's frames come too).
	for seen := 0; seen < popups+durable; {
		if f := tab.next(t); f.Kind == "popup" {
			seen++
		}
	}

	want := map[[3]string]float64{ // channel, type, outcome
		{"relay", "show_message", "sent"}: popups,
		{"relay", "add_error", "sent"}:    durable,
		{"center", "add_error", "sent"}:   durable,
		{"email", "add_error", "skipped"}: durable,
		{"push", "add_error", "skipped"}:  durable,
	}
	waitMetrics(t, d, 15*time.Second, func(f map[string]*dto.MetricFamily) []string {
		var problems []string
		expect := func(name string, labels map[string]string, want float64) {
			if got := seriesValue(f, name, labels); got != want {
				problems = append(problems, fmt.Sprintf("%s%v = %v, want %v", name, labels, got, want))
			}
		}
		expect("notify_events_received_total", map[string]string{"type": "show_message"}, popups)
		expect("notify_events_received_total", map[string]string{"type": "add_error"}, durable)
		for _, m := range f["notify_deliveries_total"].GetMetric() {
			var key [3]string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "channel":
					key[0] = lp.GetValue()
				case "type":
					key[1] = lp.GetValue()
				case "outcome":
					key[2] = lp.GetValue()
				}
			}
			if got := m.GetCounter().GetValue(); got != want[key] {
				problems = append(problems, fmt.Sprintf("notify_deliveries_total%v = %v, want %v", key, got, want[key]))
			}
		}
		// One send each, timed; a latency for each delivery that was sent.
		for channel, n := range map[string]float64{"relay": popups + durable, "center": durable, "email": durable, "push": durable} {
			expect("notify_delivery_duration_seconds", map[string]string{"channel": channel}, n)
		}
		for channel, n := range map[string]float64{"relay": popups + durable, "center": durable, "email": 0, "push": 0} {
			expect("notify_event_latency_seconds", map[string]string{"channel": channel}, n)
		}
		expect("notify_ws_connections", nil, 1)
		return problems
	})

	tab.ws.CloseNow()
	waitMetrics(t, d, 10*time.Second, func(f map[string]*dto.MetricFamily) []string {
		if v := seriesValue(f, "notify_ws_connections", nil); v != 0 {
			return []string{fmt.Sprintf("notify_ws_connections = %v after the tab closed, want 0", v)}
		}
		return nil
	})

	d.stop(t) // every log line is written once the daemon has stopped
	deliveryLines := map[string]int{}
	for i, line := range strings.Split(strings.TrimSpace(d.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON with NOTIFY_LOG_FORMAT=json: %q", i+1, line)
			continue
		}
		switch rec["msg"] {
		case "delivered", "skipped", "delivery failed, will retry", "delivery failed":
			id, _ := rec["event_id"].(string)
			channel, _ := rec["channel"].(string)
			if id == "" || channel == "" {
				t.Errorf("delivery log line without event_id and channel: %s", line)
			}
			deliveryLines[channel]++
		}
	}
	if wantLines := map[string]int{"relay": popups + durable, "center": durable, "email": durable, "push": durable}; !maps.Equal(deliveryLines, wantLines) {
		t.Errorf("delivery log lines by channel %v, want %v", deliveryLines, wantLines)
	}
	for _, out := range []struct{ name, text string }{{"stderr", d.stderr.String()}, {"stdout", d.stdout.String()}} {
		for what, s := range map[string]string{"the JWT secret": secret, "the API key": apiKey, "the admin key": adminKey, "a user token": tok} {
			if strings.Contains(out.text, s) {
				t.Errorf("%s contains %s", out.name, what)
			}
		}
	}
}
