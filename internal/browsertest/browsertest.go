package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Install says how to get the browser.
const Install = "install Chromium (Debian: apt-get install chromium; .ci/run does this) so that chromium is on PATH"

// candidates are where Chromium is looked for, after PATH.
var candidates = []string{"/usr/bin/chromium", "/usr/lib/chromium/chromium"}

// names are the binary names looked up on PATH: Debian's first.
var names = []string{"chromium", "chromium-browser"}

// Find returns the path of the Chromium binary.
func Find() (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("browsertest: Chromium was not found; " + Install)
}

// The package's one browser, started by the first Tab call of a test
// binary and stopped by Main.
var (
	mu          sync.Mutex
	inMain      bool
	browser     context.Context // a chromedp context whose first Run started the browser
	stopBrowser func()
	startErr    error
)

// Main runs the tests of a package whose tests call Tab, then stops the
// browser if one was started, and exits:
//
//	func TestMain(m *testing.M) { browsertest.Main(m) }
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main for a TestMain that has more to clean up after the tests:
// it returns m.Run's code instead of exiting.
func Run(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	if stopBrowser != nil {
		stopBrowser()
	}
	browser, stopBrowser, inMain = nil, nil, false
	mu.Unlock()
	return code
}

// start starts the browser once. The caller holds mu.
func start() error {
	switch {
	case !inMain:
		return errors.New("browsertest: call browsertest.Main(m) from the package's TestMain, which stops the browser after the tests")
	case browser != nil || startErr != nil:
		return startErr
	}
	path, err := Find()
	if err != nil {
		startErr = err
		return err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.DisableGPU,
		// Pages must not depend on the network: a request that leaves the
		// test server fails rather than waits.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	if os.Geteuid() == 0 {
		// Chromium's sandbox refuses to run as root; only then is it
		// switched off.
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		startErr = fmt.Errorf("browsertest: start %s: %w", path, err)
		return startErr
	}
	browser = ctx
	stopBrowser = func() {
		tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
		defer tcancel()
		_ = chromedp.Cancel(tctx)
		cancel()
		cancelAlloc()
	}
	return nil
}

// Options set up a tab.
type Options struct {
	// Width and Height are the viewport in CSS pixels; a 375 × 812 phone
	// when zero.
	Width, Height int64
	// Scripts enables JavaScript in the page; off by default, because the
	// pages must work without it. Evaluate still runs: it is the test's
	// script, not the page's.
	Scripts bool
	// AcceptLanguage is sent with every request, as a browser set to that
	// language would.
	AcceptLanguage string
}

// Tab opens a new tab in the package's browser, closed when the test ends.
// Every action on it is bounded by a timeout so a hung page fails the test
// instead of the test binary.
func Tab(t *testing.T, o Options) context.Context {
	t.Helper()
	mu.Lock()
	err := start()
	parent := browser
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(parent)
	t.Cleanup(cancel)
	if o.Width == 0 {
		o.Width, o.Height = 375, 812
	}
	setup := []chromedp.Action[chromedp.Void]{
		chromedp.EmulateViewport(o.Width, o.Height, chromedp.EmulateMobile),
		call(emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !o.Scripts}),
	}
	if o.AcceptLanguage != "" {
		setup = append(setup,
			call(network.Enable, network.EnableParams{}),
			call(network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": o.AcceptLanguage}}),
		)
	}
	if err := chromedp.Do(ctx, setup...); err != nil {
		t.Fatalf("browsertest: set up tab: %v", err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(tcancel)
	return tctx
}

// call makes an action of a protocol command whose result is not needed.
func call[P, R any](c cdp.Command[P, R], p P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, c, p)
		return err
	})
}

// ScrollWidth is the width of the page's content in CSS pixels; wider than
// the viewport means the page scrolls sideways.
func ScrollWidth(ctx context.Context) (int64, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[int64](`document.scrollingElement.scrollWidth`))
}

// Control is a control in the accessibility tree.
type Control struct {
	Role, Name string
	// Description is the accessible description, from aria-describedby
	// among others.
	Description string
}

// controlRoles are the roles of things a user operates.
var controlRoles = []string{
	"button", "checkbox", "combobox", "link", "listbox", "menuitem", "radio",
	"searchbox", "slider", "spinbutton", "switch", "tab", "textbox",
}

// Controls lists the page's controls from the browser's accessibility tree,
// with their computed accessible names, in document order.
func Controls(ctx context.Context) ([]Control, error) {
	res, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (accessibility.GetFullAXTreeResult, error) {
		return cdp.Call(ctx, t, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	})
	if err != nil {
		return nil, err
	}
	var out []Control
	for _, n := range res.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		role := valueString(n.Role)
		if !slices.Contains(controlRoles, role) {
			continue
		}
		out = append(out, Control{
			Role:        role,
			Name:        strings.TrimSpace(valueString(n.Name)),
			Description: strings.TrimSpace(valueString(n.Description)),
		})
	}
	return out, nil
}

// valueString reads a role or name: a JSON string in the protocol.
func valueString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return string(v.Value)
	}
	return s
}

// ByLabel selects the form control whose <label> says text: the element
// the label's for attribute points at.
func ByLabel(text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//*[@id=//label[normalize-space()=%s]/@for]`, xpathString(text)))
}

// ByText selects the button or link that says text.
func ByText(text string) chromedp.Search {
	q := xpathString(text)
	return chromedp.Search(fmt.Sprintf(`//button[normalize-space()=%s] | //a[normalize-space()=%s]`, q, q))
}

// xpathString quotes s as an XPath 1.0 string literal.
func xpathString(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	parts := strings.Split(s, `"`)
	return `concat("` + strings.Join(parts, `", '"', "`) + `")`
}
