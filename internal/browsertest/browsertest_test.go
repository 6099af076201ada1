package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestMain(m *testing.M) { Main(m) }

// The harness itself: a page that is too wide, a control without a name,
// scripts off, the language header and finding a field by its label.
func TestHarness(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<p id="lang">%s</p>
<p id="js">scripts off</p><script>document.getElementById("js").textContent = "scripts on"</script>
<label for="a">Alpha "one"</label><input id="a">
<input id="nameless">
<button>Go</button>
<div style="width:600px">wide</div>
</body></html>`, r.Header.Get("Accept-Language"))
	}))
	defer srv.Close()

	ctx := Tab(t, Options{AcceptLanguage: "nb-NO"})
	var lang, js string
	var err error
	if err = chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if lang, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("lang"))); err != nil || lang != "nb-NO" {
		t.Fatalf("Accept-Language %q, %v", lang, err)
	}
	if js, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("js"))); err != nil || js != "scripts off" {
		t.Fatalf("page scripts: %q, %v", js, err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(ByLabel(`Alpha "one"`), "x")); err != nil {
		t.Fatal(err)
	}
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("a").value`)); err != nil || v != "x" {
		t.Fatalf("value %q, %v", v, err)
	}
	w, err := ScrollWidth(ctx)
	if err != nil || w <= 375 {
		t.Fatalf("scroll width %d, %v; the 600 px div should overflow a 375 px viewport", w, err)
	}
	controls, err := Controls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(controls)
	if got != `[{textbox Alpha "one" } {textbox  } {button Go }]` {
		t.Fatalf("controls %s", got)
	}
}

func TestXPathString(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "Fødselsnummer", `"Fødselsnummer"`},
		{"double quote", `a "b"`, `'a "b"'`},
		{"both quotes", `it's "x"`, `concat("it's ", '"', "x", '"', "")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := xpathString(tt.in); got != tt.want {
				t.Fatalf("xpathString(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestFind(t *testing.T) {
	p, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p, "chromium") {
		t.Fatalf("found %s", p)
	}
}

// A missing browser is an error that says what to install; Tab turns it
// into a test failure, never a skip.
func TestFindMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	saved := candidates
	candidates = []string{t.TempDir() + "/chromium"}
	defer func() { candidates = saved }()
	_, err := Find()
	if err == nil || !strings.Contains(err.Error(), "apt-get install chromium") {
		t.Fatalf("err = %v, want the install hint", err)
	}
}

// chromedp is for tests: the tillit binary must not link it.
func TestServerDoesNotLinkChromedp(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tillit-sts/tillit/cmd/tillit").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/chromedp/") || p == "github.com/tillit-sts/tillit/internal/browsertest" {
			t.Errorf("cmd/tillit depends on %s", p)
		}
	}
}
