package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/channels/relay"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
	"github.com/kommo-notify/notify/events/token"
)

// benchPopup is the show_message of `notify bench popup`: the seed's pop-up with an icon.
const benchPopup = `{"header":"Warning","text":"Connection to the telephony server established: 18 calls are waiting in the queue","icon":"https://crm.example.com/static/icons/phone.png"}`

// BenchmarkEncodePopup is the relay channel's own work per pop-up besides its one
// publish: the frame, encoded once for every tab of the user.
//
//	go test -run '^$' -bench EncodePopup ./channels/relay/
func BenchmarkEncodePopup(b *testing.B) {
	ev, _, err := events.NewEvent(events.Address{Account: "acme", User: "42", Type: events.ShowMessage}, "01HX6Y2Q8R0000000000000001", []byte(benchPopup), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := relay.EncodePopup(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleConnections opens idleConns idle websockets to a hub (one user each,
// as `notify bench idle`) and reports what the hub's side of one holds: its heap
// (every live allocation whose stack runs through the HTTP server or the hub, read
// from the heap profile at a sampling rate of one byte), its goroutines, and the
// stack memory of the process per goroutine. The clients share the process but not
// those allocations. With -v it logs the ten largest allocation sites of the hub's
// side. One iteration is one full open-measure-close cycle.
//
//	go test -run '^$' -bench IdleConnections -benchtime 1x -v ./channels/relay/
func BenchmarkIdleConnections(b *testing.B) {
	const idleConns = 2000
	srv := natstest.Start(b)
	signer, err := token.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	hub, err := relay.NewHub(relay.HubConfig{Conn: srv.Conn(b), Tokens: signer, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = hub.Run(ctx) }()
	web := httptest.NewServer(hub)
	b.Cleanup(func() { web.Close(); cancel(); <-done })
	tokens := make([]string, idleConns)
	for i := range tokens {
		if tokens[i], err = signer.Mint("acme", fmt.Sprint("u", i), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	url := "ws" + strings.TrimPrefix(web.URL, "http") + "/?token="

	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	b.Cleanup(func() { runtime.MemProfileRate = old })
	var heap, goroutines, stack float64
	for b.Loop() {
		before := runtime.NumGoroutine()
		conns := make([]*websocket.Conn, idleConns)
		for i := range conns {
			c, _, err := websocket.Dial(b.Context(), url+tokens[i], nil)
			if err != nil {
				b.Fatal(err)
			}
			var hello relay.HelloFrame
			if _, data, err := c.Read(b.Context()); err != nil || json.Unmarshal(data, &hello) != nil {
				b.Fatalf("hello: %v", err)
			}
			// The tab's reader: a browser keeps reading (pings, frames).
			c.CloseRead(context.Background())
			conns[i] = c
		}
		runtime.GC()
		runtime.GC() // the profile shows the heap as of the last completed GC
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		sites := serverHeap()
		var total int64
		for _, s := range sites {
			total += s.bytes
		}
		heap = float64(total) / idleConns
		server := serverGoroutines()
		goroutines = float64(server) / idleConns
		stack = float64(ms.StackInuse) / float64(runtime.NumGoroutine())
		if testing.Verbose() {
			b.Logf("goroutines: %d before, %d with the connections (%d on the hub's side)", before, runtime.NumGoroutine(), server)
			for _, s := range sites[:min(10, len(sites))] {
				b.Logf("%8.0f B/conn  %s", float64(s.bytes)/idleConns, s.site)
			}
		}
		for _, c := range conns {
			c.CloseNow()
		}
	}
	b.ReportMetric(heap, "heap-B/conn")
	b.ReportMetric(goroutines, "goroutines/conn")
	b.ReportMetric(stack, "stack-B/goroutine")
	b.ReportMetric(heap+goroutines*stack, "B/conn")
}

// site is the live heap of one allocation site.
type site struct {
	site  string
	bytes int64
}

// serverSide reports whether a stack is the hub's side of a connection: it runs
// through the HTTP server's connection or the hub, not through a client's dial.
func serverSide(frames *runtime.Frames) (leaf string, server bool) {
	for {
		f, more := frames.Next()
		if leaf == "" && !strings.HasPrefix(f.Function, "runtime.") {
			leaf = f.Function
		}
		switch {
		case strings.Contains(f.Function, "websocket.Dial"):
			return leaf, false
		case strings.HasPrefix(f.Function, "net/http.(*conn)."), strings.Contains(f.Function, "relay.(*Hub)"),
			strings.Contains(f.Function, "relay.(*conn)"), strings.HasPrefix(f.Function, "github.com/nats-io/nats.go."):
			server = true
		}
		if !more {
			return leaf, server
		}
	}
}

// serverHeap is the live heap of the hub's side by allocation site, largest first.
func serverHeap() []site {
	n, _ := runtime.MemProfile(nil, false)
	records := make([]runtime.MemProfileRecord, n+100)
	n, _ = runtime.MemProfile(records, false)
	bySite := map[string]int64{}
	for _, r := range records[:n] {
		if r.InUseBytes() == 0 {
			continue
		}
		leaf, server := serverSide(runtime.CallersFrames(r.Stack()))
		if server {
			bySite[leaf] += r.InUseBytes()
		}
	}
	out := make([]site, 0, len(bySite))
	for s, b := range bySite {
		out = append(out, site{s, b})
	}
	slices.SortFunc(out, func(a, b site) int { return int(b.bytes - a.bytes) })
	return out
}

// serverGoroutines counts the goroutines on the hub's side.
func serverGoroutines() int {
	n, _ := runtime.GoroutineProfile(nil)
	records := make([]runtime.StackRecord, n+100)
	n, _ = runtime.GoroutineProfile(records)
	count := 0
	for _, r := range records[:n] {
		if _, server := serverSide(runtime.CallersFrames(r.Stack())); server {
			count++
		}
	}
	return count
}
