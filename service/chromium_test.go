package service

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// headlessChromium starts Debian's Chromium through chromedp, headless with
// a fresh profile and no background traffic of its own, plus any extra
// flags. Its output and the page's console are printed if the test fails;
// it is stopped when the test ends.
func headlessChromium(t *testing.T, path string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	var (
		mu     sync.Mutex
		output bytes.Buffer
	)
	logw := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return output.Write(p) })
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.CombinedOutput(logw),
	}, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			mu.Lock()
			t.Logf("chromium output and page console:\n%s", output.String())
			mu.Unlock()
		}
	})
	if err := chromedp.Do(browser, chromedp.EmulateViewport(1000, 720)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	go func() {
		for m, err := range chromedp.Console(browser) {
			if err != nil {
				return
			}
			fmt.Fprintf(logw, "console: %s\n", m)
		}
	}()
	return browser
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
