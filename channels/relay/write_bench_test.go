package relay

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

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
		metrics: newHubMetrics(prometheus.NewRegistry()),
	}
	conns := make(chan *conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		c := newConn(h, ws, token.User{Account: "acme", User: "42", Expires: time.Now().Add(time.Hour)})
		conns <- c
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c.serve(ctx, cancel)
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
	frame := []byte(`{"kind":"popup","type":"show_message","id":"01HX6Y2Q8R0000000000000001","payload":` + benchPayload + `}`)
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
