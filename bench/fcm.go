package bench

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kommo-notify/notify/channels/push/fcmemu"
)

// fcmProject is the Firebase project of the harness's emulator.
const fcmProject = "bench-project"

// fcmStaticToken is the bearer token the raw baselines use (the daemon mints its own
// through the service account's OAuth flow).
const fcmStaticToken = "bench-static-token"

// fcmServer is the FCM v1 emulator the push scenarios send to (channels/push/fcmemu,
// which the project ships), in the harness, with a service account whose key file the
// daemon reads. Every messages:send request tells onPush the event id in its data the
// moment it arrives, before the emulator's latency.
type fcmServer struct {
	emu         *fcmemu.Emulator
	srv         *http.Server
	ln          net.Listener
	url         string
	credentials string // the key file for FCM_CREDENTIALS_FILE
	onPush      func(id string)
}

func startFCM(dir string, latency time.Duration, onPush func(id string)) (*fcmServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fcmServer{
		emu:    fcmemu.New(fcmemu.Options{Project: fcmProject, Latency: latency, AccessTokens: []string{fcmStaticToken}, Keep: 100}),
		ln:     ln,
		url:    "http://" + ln.Addr().String(),
		onPush: onPush,
	}
	sa, err := fcmemu.NewServiceAccount(fcmProject, f.url+"/token")
	if err != nil {
		ln.Close()
		return nil, err
	}
	f.emu.Trust(sa.Email, &sa.Key.PublicKey)
	key, err := sa.JSON()
	if err != nil {
		ln.Close()
		return nil, err
	}
	f.credentials = filepath.Join(dir, "fcm-service-account.json")
	if err := os.WriteFile(f.credentials, key, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	fcmemu.ConfigureServer(f.srv)
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// ServeHTTP notes the event id of a send, then lets the emulator answer.
func (f *fcmServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, ":send") && f.onPush != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if id := dataID(body); id != "" {
			f.onPush(id)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	f.emu.ServeHTTP(w, r)
}

func (f *fcmServer) close() error { return f.srv.Close() }

// dataID is the value of the first "id" member of a JSON body, found without decoding
// it: in an FCM message only data carries one.
func dataID(body []byte) string {
	const key = `"id":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}
