package fcmemu_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels/push/fcmemu"
)

const (
	project = "p1"
	bearer  = "static-token"
)

func start(t *testing.T, opts fcmemu.Options) (*fcmemu.Emulator, string) {
	t.Helper()
	opts.Project = project
	opts.AccessTokens = append(opts.AccessTokens, bearer)
	emu := fcmemu.New(opts)
	srv := httptest.NewUnstartedServer(emu)
	fcmemu.ConfigureServer(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	return emu, srv.URL
}

// fcmAnswer is an FCM response: a name, or the error body.
type fcmAnswer struct {
	status     int
	retryAfter string
	Name       string `json:"name"`
	Error      struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

func (a fcmAnswer) errorCode() string {
	for _, d := range a.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" {
			return d.ErrorCode
		}
	}
	return ""
}

func (a fcmAnswer) field() string {
	for _, d := range a.Error.Details {
		for _, v := range d.FieldViolations {
			return v.Field
		}
	}
	return ""
}

// send posts body to messages:send of proj with the bearer token.
func send(t *testing.T, base, proj, token, body string) fcmAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/projects/"+proj+"/messages:send", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := fcmAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("decode the answer: %v", err)
	}
	return a
}

func TestAcceptsAValidMessage(t *testing.T) {
	emu, base := start(t, fcmemu.Options{})
	a := send(t, base, project, bearer, `{"message":{"token":"dGVzdA:APA91bH-x_y","notification":{"title":"T","body":"B"},
		"data":{"type":"add_call"},"android":{"priority":"high","collapse_key":"k","ttl":"30s","notification":{"channel_id":"calls","notification_priority":"PRIORITY_MAX"}},
		"apns":{"headers":{"apns-priority":"10","apns-push-type":"alert","apns-collapse-id":"k"},"payload":{"aps":{"sound":"default"}}}}}`)
	if a.status != http.StatusOK || !strings.HasPrefix(a.Name, "projects/p1/messages/") {
		t.Fatalf("answer %d %+v", a.status, a)
	}
	got := emu.Messages()
	if len(got) != 1 || got[0].Name != a.Name || got[0].Message.Token != "dGVzdA:APA91bH-x_y" ||
		got[0].Message.Android.Notification.ChannelID != "calls" || got[0].Message.APNS.Headers["apns-priority"] != "10" {
		t.Fatalf("received %+v", got)
	}

	// validate_only checks without keeping.
	if a := send(t, base, project, bearer, `{"validate_only":true,"message":{"topic":"news"}}`); a.status != http.StatusOK {
		t.Fatalf("validate_only: %d %+v", a.status, a.Error)
	}
	if st := emu.Stats(); st.Requests != 2 || st.Accepted != 1 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestValidation(t *testing.T) {
	_, base := start(t, fcmemu.Options{})
	big := strings.Repeat("x", 4097)
	for _, tc := range []struct {
		name, message string
		field         string
	}{
		{"no target", `{"data":{"a":"b"}}`, "message"},
		{"two targets", `{"token":"abc","topic":"news"}`, "message"},
		{"bad token", `{"token":"not a token!"}`, "message.token"},
		{"bad topic", `{"topic":"a b"}`, "message.topic"},
		{"unknown field", `{"token":"abc","priority":"high"}`, "message"},
		{"reserved data key", `{"token":"abc","data":{"from":"Jeremy"}}`, "message.data"},
		{"google data key", `{"token":"abc","data":{"google.x":"y"}}`, "message.data"},
		{"data not a string", `{"token":"abc","data":{"n":1}}`, "message"},
		{"data too big", `{"token":"abc","data":{"big":"` + big + `"}}`, "message"},
		{"android priority", `{"token":"abc","android":{"priority":"urgent"}}`, "message.android.priority"},
		{"android ttl", `{"token":"abc","android":{"ttl":"30"}}`, "message.android.ttl"},
		{"notification priority", `{"token":"abc","android":{"notification":{"notification_priority":"HIGH"}}}`, "message.android.notification.notification_priority"},
		{"apns priority", `{"token":"abc","apns":{"headers":{"apns-priority":"7"}}}`, "message.apns.headers"},
		{"apns push type", `{"token":"abc","apns":{"headers":{"apns-push-type":"ring"}}}`, "message.apns.headers"},
		{"apns collapse id", `{"token":"abc","apns":{"headers":{"apns-collapse-id":"` + strings.Repeat("k", 65) + `"}}}`, "message.apns.headers"},
		{"apns without aps", `{"token":"abc","apns":{"payload":{"custom":1}}}`, "message.apns.payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, base, project, bearer, `{"message":`+tc.message+`}`)
			if a.status != http.StatusBadRequest || a.Error.Status != "INVALID_ARGUMENT" || a.errorCode() != "INVALID_ARGUMENT" || a.field() != tc.field {
				t.Fatalf("answer %d %s/%s field %q (%s), want 400 INVALID_ARGUMENT naming %q",
					a.status, a.Error.Status, a.errorCode(), a.field(), a.Error.Message, tc.field)
			}
		})
	}
	if a := send(t, base, project, bearer, `{"message":{"token":"abc"},"extra":1}`); a.status != http.StatusBadRequest {
		t.Errorf("an unknown request member: %d", a.status)
	}
}

func TestAuthenticationAndProject(t *testing.T) {
	_, base := start(t, fcmemu.Options{})
	msg := `{"message":{"token":"abc"}}`
	for _, tc := range []struct {
		name, project, token string
		status               int
		grpc                 string
	}{
		{"no token", project, "", http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"unknown token", project, "forged", http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"another project", "p2", bearer, http.StatusForbidden, "PERMISSION_DENIED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, base, tc.project, tc.token, msg)
			if a.status != tc.status || a.Error.Status != tc.grpc || a.errorCode() != "" {
				t.Fatalf("answer %d %s/%q, want %d %s without an FCM code", a.status, a.Error.Status, a.errorCode(), tc.status, tc.grpc)
			}
		})
	}
}

func TestScriptedFailures(t *testing.T) {
	emu, base := start(t, fcmemu.Options{})
	for _, r := range []fcmemu.Rule{
		{Token: "gone", Error: fcmemu.Unregistered},
		{Token: "flaky", Error: fcmemu.Unavailable, After: 1, Times: 2, RetryAfter: 5},
		{Token: "busy", Error: fcmemu.QuotaExceeded, Times: 1},
		{Token: "ios", Error: fcmemu.ThirdPartyAuthError},
		{Token: "bad", Error: fcmemu.InvalidArgument},
		{Token: "mismatch", Error: fcmemu.SenderIDMismatch},
		{Token: "broken", Error: fcmemu.Internal, Times: 1},
		{Token: "revoked", Error: fcmemu.Unauthenticated},
	} {
		if err := emu.Fail(r); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(token string) string { return `{"message":{"token":"` + token + `"}}` }
	for _, tc := range []struct {
		token      string
		status     int
		code       string
		retryAfter string
	}{
		{"gone", 404, "UNREGISTERED", ""},
		{"flaky", 200, "", ""}, // after: 1
		{"flaky", 503, "UNAVAILABLE", "5"},
		{"flaky", 503, "UNAVAILABLE", "5"},
		{"flaky", 200, "", ""}, // times: 2
		{"busy", 429, "QUOTA_EXCEEDED", "60"},
		{"busy", 200, "", ""},
		{"ios", 401, "THIRD_PARTY_AUTH_ERROR", ""},
		{"bad", 400, "INVALID_ARGUMENT", ""},
		{"mismatch", 403, "SENDER_ID_MISMATCH", ""},
		{"broken", 500, "INTERNAL", ""},
		{"revoked", 401, "", ""},
		{"fine", 200, "", ""},
	} {
		a := send(t, base, project, bearer, msg(tc.token))
		if a.status != tc.status || a.errorCode() != tc.code || a.retryAfter != tc.retryAfter {
			t.Errorf("%s: %d %q Retry-After %q, want %d %q %q", tc.token, a.status, a.errorCode(), a.retryAfter, tc.status, tc.code, tc.retryAfter)
		}
	}
	if a := send(t, base, project, bearer, msg("bad")); a.field() != "message.token" || !strings.Contains(a.Error.Message, "registration token") {
		t.Errorf("an invalid token's answer names %q: %q", a.field(), a.Error.Message)
	}
	if err := emu.Fail(fcmemu.Rule{Error: "NOPE"}); err == nil {
		t.Error("an unknown error code was accepted")
	}
}

func TestParseRule(t *testing.T) {
	r, err := fcmemu.ParseRule("error=quota_exceeded,token=t1,after=2,times=3,retry_after=30")
	want := fcmemu.Rule{Token: "t1", Error: fcmemu.QuotaExceeded, After: 2, Times: 3, RetryAfter: 30}
	if err != nil || r != want {
		t.Fatalf("ParseRule = %+v, %v; want %+v", r, err, want)
	}
	for _, bad := range []string{"", "token=t1", "error=NOPE", "error=INTERNAL,times=x", "error=INTERNAL,when=now", "error=INTERNAL,times=-1"} {
		if _, err := fcmemu.ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) succeeded", bad)
		}
	}
}

func TestLatency(t *testing.T) {
	emu, base := start(t, fcmemu.Options{Latency: 50 * time.Millisecond})
	begin := time.Now()
	send(t, base, project, bearer, `{"message":{"token":"abc"}}`)
	if took := time.Since(begin); took < 50*time.Millisecond {
		t.Errorf("answered after %v, want at least the 50ms latency", took)
	}
	emu.SetLatency(0)
}

func TestKeepsABoundedHistory(t *testing.T) {
	emu, base := start(t, fcmemu.Options{Keep: 3})
	for i := range 5 {
		send(t, base, project, bearer, fmt.Sprintf(`{"message":{"token":"t%d"}}`, i))
	}
	got := emu.Messages()
	if len(got) != 3 || got[0].Message.Token != "t2" || got[2].Message.Token != "t4" {
		t.Fatalf("kept %v, want t2..t4", got)
	}
	if st := emu.Stats(); st.Accepted != 5 {
		t.Errorf("accepted %d, want 5", st.Accepted)
	}
}

func TestAdminAPI(t *testing.T) {
	emu, base := start(t, fcmemu.Options{})
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := do("POST", "/emulator/rules", `{"token":"gone","error":"UNREGISTERED"}`); code != http.StatusCreated {
		t.Fatalf("add rule: %d %s", code, b)
	}
	if code, _ := do("POST", "/emulator/rules", `{"error":"NOPE"}`); code != http.StatusBadRequest {
		t.Errorf("add a bad rule: %d", code)
	}
	send(t, base, project, bearer, `{"message":{"token":"gone"}}`)
	send(t, base, project, bearer, `{"message":{"token":"here","data":{"k":"v"}}}`)
	code, b := do("GET", "/emulator/messages?token=here", "")
	var page struct {
		Total    int               `json:"total"`
		Messages []fcmemu.Received `json:"messages"`
	}
	if err := json.Unmarshal(b, &page); code != http.StatusOK || err != nil || page.Total != 1 || len(page.Messages) != 1 || page.Messages[0].Message.Data["k"] != "v" {
		t.Fatalf("messages: %d %s", code, b)
	}
	if code, b := do("GET", "/emulator/stats", ""); code != http.StatusOK || !bytes.Contains(b, []byte(`"failed":1`)) {
		t.Errorf("stats: %d %s", code, b)
	}
	if code, _ := do("PUT", "/emulator/latency", `{"latency":"1ms"}`); code != http.StatusOK {
		t.Errorf("latency: %d", code)
	}
	if code, _ := do("POST", "/emulator/reset", ""); code != http.StatusNoContent || len(emu.Messages()) != 0 || len(emu.Rules()) != 0 {
		t.Errorf("reset: %d, %d messages, %d rules", code, len(emu.Messages()), len(emu.Rules()))
	}
	if code, _ := do("GET", "/nowhere", ""); code != http.StatusNotFound {
		t.Errorf("unknown route: %d", code)
	}
}

// assertion signs a service account's JWT-bearer assertion as x/oauth2/jwt does.
func assertion(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestTokenEndpoint(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	const email = "sender@p1.iam.gserviceaccount.com"
	emu, base := start(t, fcmemu.Options{Accounts: map[string]*rsa.PublicKey{email: &key.PublicKey}, Strict: true})
	now := time.Now().Unix()
	claims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": email, "scope": "https://www.googleapis.com/auth/firebase.messaging", "aud": base + "/token", "iat": now, "exp": now + 3600}
		if change != nil {
			change(c)
		}
		return c
	}
	mint := func(grant, assertion string) (int, map[string]any) {
		t.Helper()
		resp, err := http.PostForm(base+"/token", url.Values{"grant_type": {grant}, "assertion": {assertion}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	const grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

	code, body := mint(grant, assertion(t, key, claims(nil)))
	token, _ := body["access_token"].(string)
	if code != http.StatusOK || token == "" || body["token_type"] != "Bearer" {
		t.Fatalf("mint: %d %v", code, body)
	}
	if a := send(t, base, project, token, `{"message":{"token":"abc"}}`); a.status != http.StatusOK {
		t.Fatalf("send with the minted token: %d %s", a.status, a.Error.Message)
	}
	_ = emu

	for _, tc := range []struct {
		name, grant, assertion, error string
	}{
		{"another grant", "client_credentials", assertion(t, key, claims(nil)), "unsupported_grant_type"},
		{"not a JWT", grant, "abc", "invalid_grant"},
		{"wrong key", grant, assertion(t, other, claims(nil)), "invalid_grant"},
		{"unknown account", grant, assertion(t, key, claims(func(c map[string]any) { c["iss"] = "x@y" })), "invalid_grant"},
		{"expired", grant, assertion(t, key, claims(func(c map[string]any) { c["iat"], c["exp"] = now-7200, now-3600 })), "invalid_grant"},
		{"another audience", grant, assertion(t, key, claims(func(c map[string]any) { c["aud"] = "https://oauth2.googleapis.com/token" })), "invalid_grant"},
		{"no messaging scope", grant, assertion(t, key, claims(func(c map[string]any) { c["scope"] = "email" })), "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := mint(tc.grant, tc.assertion)
			if code != http.StatusBadRequest || body["error"] != tc.error {
				t.Fatalf("mint: %d %v, want 400 %s", code, body, tc.error)
			}
		})
	}
}

func TestServiceAccountJSON(t *testing.T) {
	sa, err := fcmemu.NewServiceAccount("p1", "http://127.0.0.1:4004/token")
	if err != nil {
		t.Fatal(err)
	}
	b, err := sa.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]string
	if err := json.Unmarshal(b, &f); err != nil || f["type"] != "service_account" || f["token_uri"] != sa.TokenURI ||
		f["client_email"] != sa.Email || !strings.Contains(f["private_key"], "BEGIN PRIVATE KEY") {
		t.Fatalf("key file %s", b)
	}
}
