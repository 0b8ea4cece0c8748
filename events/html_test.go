package events

import "testing"

func TestSanitizeHTML(t *testing.T) {
	const blank = ` target="_blank" rel="noopener noreferrer"`
	for _, tc := range []struct{ name, in, want string }{
		// Kept.
		{"plain text", "Connection established", "Connection established"},
		{"allowed elements", `<p><b>x</b> <strong>s</strong> <i>i</i> <em>e</em><br><span>n</span></p>`, `<p><b>x</b> <strong>s</strong> <i>i</i> <em>e</em><br><span>n</span></p>`},
		{"upper case", `<P><B>x</B><BR></P>`, `<p><b>x</b><br></p>`},
		{"self-closing br", `a<br/>b<br />c`, `a<br/>b<br/>c`},
		{"path link", `<a href="/contacts/detail/1">Jeremy</a>`, `<a href="/contacts/detail/1">Jeremy</a>`},
		{"absolute link opens in a new tab", `<a href="https://example.com/r.mp3">rec</a>`, `<a href="https://example.com/r.mp3"` + blank + `>rec</a>`},
		{"href trimmed and quoted", `<A HREF=' /x '>up</A>`, `<a href="/x">up</a>`},
		{"entities in href", `<a href="https://example.com/?a=1&amp;b=2">q</a>`, `<a href="https://example.com/?a=1&amp;b=2"` + blank + `>q</a>`},
		{"text escaped", `a < b > c & d " e ' f`, `a &lt; b &gt; c &amp; d &#34; e &#39; f`},
		{"entities kept", `&lt;script&gt; &amp;amp; &#x41;&nbsp;x`, "&lt;script&gt; &amp;amp; A\u00a0x"},
		{"unbalanced tags pass as they are", `<b><i>unclosed <a href="/x">link`, `<b><i>unclosed <a href="/x">link`},
		{"misnested", `<a href="/x"><b>a</a></b>`, `<a href="/x"><b>a</a></b>`},

		// Removed.
		{"img onerror", `<img src=x onerror=alert(1)>`, ``},
		{"img onerror in text", `hi <img src=x onerror=alert(1)> there`, `hi   there`},
		{"script", `<script>alert(1)</script>ok`, `ok`},
		{"script unclosed", `ok<script>alert(1)`, `ok`},
		{"style", `<style>body{display:none}</style>ok`, `ok`},
		{"javascript href", `<a href="javascript:alert(1)">x</a>`, `<a>x</a>`},
		{"javascript href upper case", `<a href="JAVASCRIPT:alert(1)">x</a>`, `<a>x</a>`},
		{"javascript href with a tab", "<a href=\"java\tscript:alert(1)\">x</a>", `<a>x</a>`},
		{"javascript href with an entity tab", `<a href="java&#9;script:alert(1)">x</a>`, `<a>x</a>`},
		{"data href", `<a href="data:text/html,<script>alert(1)</script>">x</a>`, `<a>x</a>`},
		{"protocol-relative href", `<a href="//evil.com">x</a>`, `<a>x</a>`},
		{"backslash href", `<a href="/\evil.com">x</a>`, `<a>x</a>`},
		{"tab after the slash", `<a href="/&#9;/evil.com">x</a>`, `<a>x</a>`},
		{"relative href", `<a href="contacts/1">x</a>`, `<a>x</a>`},
		{"empty href", `<a href="">x</a>`, `<a>x</a>`},
		{"the first href counts, as in browsers", `<a href="javascript:alert(1)" href="/x">x</a>`, `<a>x</a>`},
		{"later hrefs dropped", `<a href="/x" href="javascript:alert(1)">x</a>`, `<a href="/x">x</a>`},
		{"onclick", `<a href="/contacts/1" onclick="x">ok</a>`, `<a href="/contacts/1">ok</a>`},
		{"target and rel replaced", `<a href="https://e.com" target="_self" rel="opener">x</a>`, `<a href="https://e.com"` + blank + `>x</a>`},
		{"target on a path", `<a href="/x" target="_blank">x</a>`, `<a href="/x">x</a>`},
		{"style attribute", `<p style="background:url(javascript:alert(1))">p</p>`, `<p>p</p>`},
		{"class and id", `<span class="c" id="i" title="t">s</span>`, `<span>s</span>`},
		{"svg onload", `<svg onload=alert(1)><circle r=1 /></svg>ok`, `ok`},
		{"svg script", `<svg><script>alert(1)</script></svg>ok`, `ok`},
		{"math", `<math><mi xlink:href="javascript:alert(1)">m</mi></math>`, `m`},
		{"iframe", `<iframe src="https://evil.com">inner</iframe>after`, `after`},
		{"object", `<object data="x">inner</object>after`, `after`},
		{"form", `<form action="https://evil.com"><input name=p><button>go</button></form>`, `go`},
		{"noscript", `<noscript><p title="</noscript><img src=x onerror=alert(1)>">`, `&#34;&gt;`},
		{"textarea", `<textarea><b>t</b></textarea>`, `&lt;b&gt;t&lt;/b&gt;`},
		{"title", `<title>t</title>x`, `x`},
		{"comments and doctype", `<!-- c --><!DOCTYPE html><![CDATA[x]]>y`, `y`},
		{"split script tag", `<<script>script>alert(1)<</script>/script>`, `&lt;/script&gt;`},
		{"block elements leave a space", `<div>one</div><div>two</div>`, `one  two`},
		{"control characters", "a\x00b\x1bc\u0085d\r\ne&#1;f\rg", "abcd\nef\ng"},
		{"white space only", " \n\t ", ``},
		{"nothing left", `<img src=x>`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SanitizeHTML(tc.in)
			if got != tc.want {
				t.Errorf("SanitizeHTML(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			checkSafeHTML(t, got)
			if again := SanitizeHTML(got); again != got {
				t.Errorf("not idempotent: %q sanitizes to %q", got, again)
			}
		})
	}
}

func TestPlainText(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "Call from +1 (415) 523-7743", "Call from +1 (415) 523-7743"},
		{"tags removed", `<b>bold</b> and <i>it</i>alic`, "bold and italic"},
		{"entities decoded", `&lt;b&gt; &amp;amp; &quot;q&quot; &#39;s&nbsp;x`, `<b> &amp; "q" 's x`},
		{"br", "a<br>b<br/>c</br>d", "a\nb\nc\nd"},
		{"br run", "a<br><br><br><br>b", "a\n\nb"},
		{"paragraphs", "<p>Hello</p><p>World</p>", "Hello\n\nWorld"},
		{"paragraph then text", "<p>one<br>two</p>three", "one\ntwo\n\nthree"},
		{"white space collapsed", "  a \n\t b\u00a0\u2003c  ", "a b c"},
		{"no leading or trailing breaks", "<p><br>a<br></p><br>", "a"},
		{"link", `Call <a href="/contacts/detail/1">Jeremy</a>, &amp; more`, "Call Jeremy (/contacts/detail/1), & more"},
		{"link labelled with its URL", `<a href="https://example.com">https://example.com</a>`, "https://example.com"},
		{"link labelled with its URL, padded", `<a href="https://example.com"> https://example.com </a>!`, "https://example.com !"},
		{"link without label", `see <a href="/x"></a>`, "see /x"},
		{"link without href", `<a>plain</a>`, "plain"},
		{"unclosed link", `<a href="/a">A`, "A (/a)"},
		{"links in a row", `x <a href="/a">A</a> <a href="/b">B</a>`, "x A (/a) B (/b)"},
		{"escaped href", `<a href="/x?a=1&amp;b=2">q</a>`, "q (/x?a=1&b=2)"},
		{"script and style dropped", `<script>x</script><style>y</style>z`, "z"},
		{"sanitized text", SanitizeHTML(`<p>Call from <b>Jeremy</b><br>see <a href="https://example.com/r.mp3">recording</a></p><p>Bye</p>`), "Call from Jeremy\nsee recording (https://example.com/r.mp3)\n\nBye"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PlainText(tc.in); got != tc.want {
				t.Errorf("PlainText(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func BenchmarkSanitizeHTML(b *testing.B) {
	const text = `<p>Call from <b>Jeremy Watts</b> <img src=x onerror=alert(1)><br>` +
		`<a href="https://example.com/dialog.mp3" onclick="x">recording</a>, <a href="/contacts/detail/18221265">contact</a></p>`
	b.ReportAllocs()
	for b.Loop() {
		SanitizeHTML(text)
	}
}
