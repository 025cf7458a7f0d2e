package web_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startBrowser starts a headless Chromium for the test (skipping where it
// is not installed, failing under CI) and returns its context, which ends
// after timeout or with the test.
func startBrowser(t *testing.T, timeout time.Duration, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	opts = append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.UserAgent(browserUA),
	}, opts...)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return bctx
}

// waitFor polls a JavaScript condition for up to 15 seconds; on failure
// it says what the page shows.
func waitFor(expr, what string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		var err error
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			var ok bool
			if ok, err = chromedp.Evaluate[bool](expr)(ctx, tg); err == nil && ok {
				return nil
			}
		}
		page, _ := chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`)(ctx, tg)
		return errors.Join(errors.New(what+" did not happen; the page: "+page), err)
	})
}

// browserStep is one named step of a browser walk.
type browserStep struct {
	name string
	do   chromedp.Action[chromedp.Void]
}

// walk runs the steps in turn, failing the test at the first that fails.
func walk(t *testing.T, bctx context.Context, steps ...browserStep) {
	t.Helper()
	for _, st := range steps {
		if err := chromedp.Do(bctx, st.do); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
}

// freePort is a loopback port nothing listens on now, for a server whose
// base URL must be known before it starts.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
