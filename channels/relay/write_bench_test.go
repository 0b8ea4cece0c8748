package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
	"github.com/kommo-notify/notify/events/token"
)

// BenchmarkConnWrite is the hub's side of the pop-up path past the fan-out: frames
// handed to one connection's queue (as fanout does) and written to a real websocket
// whose client reads them. At most half the queue is in flight, so nobody is dropped.
// One op is one frame.
//
//	go test -run '^$' -bench ConnWrite -count 6 ./channels/relay/
func BenchmarkConnWrite(b *testing.B) {
	h := &Hub{
		cfg:     HubConfig{QueueSize: 256, PingInterval: time.Hour, WriteTimeout: 10 * time.Second},
		log:     slog.New(slog.DiscardHandler),
		metrics: newHubMetrics(prometheus.NewRegistry(), func() float64 { return 0 }),
	}
	conns := make(chan *conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &smallHijack{ResponseWriter: w}
		ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		_ = ws.CloseNow() // as ServeHTTP does: the connection is the conn's
		c := newConn(h, hw.conn, token.User{Account: "acme", User: "42", Expires: time.Now().Add(time.Hour)})
		c.in = hw.in
		h.active.Add(1) // as join does; the reader's end leaves
		conns <- c
		c.releaseWrites() // as after the hello
		c.readLoop()
	}))
	b.Cleanup(srv.Close)
	ws, _, err := websocket.Dial(b.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.CloseNow() })
	c := <-conns
	b.Cleanup(func() { c.drop(websocket.StatusNormalClosure, "", "") })

	const window = 128
	read := make(chan struct{}, window)
	go func() {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				close(read)
				return
			}
			read <- struct{}{}
		}
	}()
	// Framed once, as fanout frames it for every connection.
	frame := textFrame([]byte(`{"kind":"popup","type":"show_message","id":"01HX6Y2Q8R0000000000000001","payload":` + benchPayload + `}`))
	inFlight := 0
	b.ReportAllocs()
	for b.Loop() {
		for inFlight >= window {
			if _, ok := <-read; !ok {
				b.Fatal("connection ended")
			}
			inFlight--
		}
		c.enqueue(frame)
		inFlight++
	}
	for ; inFlight > 0; inFlight-- {
		if _, ok := <-read; !ok {
			b.Fatal("connection ended")
		}
	}
}

const benchPayload = `{"header":"Warning","text":"Connection to the telephony server established: 18 calls are waiting in the queue","icon":"https://crm.example.com/static/icons/phone.png"}`

// BenchmarkFanout is a broadcast on the hub's side: one frame handed to the account's
// group (fanout, as Run and a local relay call it) and written to fanoutConns real
// websockets, each with a client reading it. One op is one broadcast, until every
// client has the frame; ns/frame is per connection.
//
//	go test -run '^$' -bench Fanout -count 6 ./channels/relay/
func BenchmarkFanout(b *testing.B) {
	const fanoutConns = 1000
	srv := natstest.Start(b)
	signer, err := token.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHub(HubConfig{Conn: srv.Conn(b), Tokens: signer, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	web := httptest.NewServer(h)
	b.Cleanup(func() { web.Close(); cancel(); <-done })
	url := "ws" + strings.TrimPrefix(web.URL, "http") + "/?token="
	var got sync.WaitGroup
	for i := range fanoutConns {
		tok, err := signer.Mint("acme", fmt.Sprint("u", i), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		ws, _, err := websocket.Dial(b.Context(), url+tok, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ws.CloseNow() })
		if _, _, err := ws.Read(b.Context()); err != nil { // the hello
			b.Fatal(err)
		}
		go func() {
			for {
				if _, _, err := ws.Read(context.Background()); err != nil {
					return
				}
				got.Done()
			}
		}()
	}
	subject := channels.UISubject("acme", events.AllUsers)
	frame := []byte(`{"kind":"popup","type":"show_message","id":"01HX6Y2Q8R0000000000000001","payload":` + benchPayload + `}`)
	b.ReportAllocs()
	for b.Loop() {
		got.Add(fanoutConns)
		h.fanout(subject, frame)
		got.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fanoutConns), "ns/frame")
}
