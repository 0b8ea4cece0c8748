package email

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Server
	}{
		{"smtp://mail.example.com", Server{Host: "mail.example.com", Port: 587, TLS: StartTLS}},
		{"smtp://mail.example.com?tls=tls", Server{Host: "mail.example.com", Port: 465, TLS: ImplicitTLS}},
		{"smtp://mailpit?tls=none", Server{Host: "mailpit", Port: 25, TLS: NoTLS}},
		{"smtp://mailpit:1025?tls=NONE", Server{Host: "mailpit", Port: 1025, TLS: NoTLS}},
		{"smtps://mail.example.com", Server{Host: "mail.example.com", Port: 465, TLS: ImplicitTLS}},
		{"smtp://apikey:p%40ss%3Aw0rd@smtp.example.com:2525/", Server{Host: "smtp.example.com", Port: 2525, TLS: StartTLS, Username: "apikey", Password: "p@ss:w0rd"}},
		{"smtp://user:pass@localhost:25?tls=none", Server{Host: "localhost", Port: 25, TLS: NoTLS, Username: "user", Password: "pass"}},
		{"smtp://[::1]:2525?tls=none", Server{Host: "::1", Port: 2525, TLS: NoTLS}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseURLRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://mail.example.com", "scheme"},
		{"mail.example.com:587", "scheme"},
		{"smtp://", "no host"},
		{"smtp://mail.example.com:0", "port"},
		{"smtp://mail.example.com:99999", "port"},
		{"smtp://mail.example.com?tls=yes", "tls must be"},
		{"smtp://mail.example.com?tsl=none", "unknown parameter"},
		{"smtp://mail.example.com/path", "path"},
		{"smtp://:secret@mail.example.com", "user name"},
		{"smtp://user:secret@mail.example.com?tls=none", "clear text"},
		{"smtp://user:secret@mail.example.com:bad", "not a URL"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseURL(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseURL: %v, want an error about %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

func TestServerStringHidesThePassword(t *testing.T) {
	s := Server{Host: "smtp.example.com", Port: 587, TLS: StartTLS, Username: "apikey", Password: "secret"}
	if got, want := s.String(), "smtp://apikey@smtp.example.com:587?tls=starttls"; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{
			Server:     Server{Host: "mail.example.com", Port: 587, TLS: StartTLS},
			From:       testFrom,
			BaseURL:    testBase,
			Recipients: newProfiles(),
		}
	}
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no server", func(c *Config) { c.Server = Server{} }, "no SMTP server"},
		{"no sender", func(c *Config) { c.From = "" }, "no sender"},
		{"bad sender", func(c *Config) { c.From = "Notifications" }, "not an address"},
		{"two senders", func(c *Config) { c.From = "a@example.com, b@example.com" }, "not an address"},
		{"sender with a newline", func(c *Config) { c.From = "Ops\r\nBcc: x@example.com <a@example.com>" }, "not an address"},
		{"relative base", func(c *Config) { c.BaseURL = "/crm" }, "base URL"},
		{"no directory", func(c *Config) { c.Recipients = nil }, "directory"},
		{"too many connections", func(c *Config) { c.Connections = 1000 }, "connections"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.modify(&c)
			c.setDefaults()
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error about %s", err, tc.want)
			}
		})
	}
	c := valid()
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(valid): %v", err)
	}
}
