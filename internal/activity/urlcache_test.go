package activity

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"steward/internal/store/storetest"
)

// TestURLCacheAnswersAsNormalising: an event whose page and referrer come
// from the cache is stored exactly as one normalised afresh, a bad URL is
// refused every time (refusals are not cached), and the cache stays
// within its bound and holds no raw URL.
func TestURLCacheAnswersAsNormalising(t *testing.T) {
	db := storetest.SQLite(t, mods())
	cached := newFixture(t, db, testConfig(allFields(), time.UTC), time.Now().UTC())
	urls := []string{
		"https://example.org/articles/1?utm_campaign=Spring&utm_source=news&q=Privacy+Law",
		"https://EXAMPLE.org/a/b/?email=ann@example.org&utm_medium=mail",
		"https://example.org/users/ann@example.org/profile",
		"https://example.org/%E2%82%AC/price",
		"https://example.org",
	}
	refs := []string{"", "https://News.example.com/x/y?z=1", "https://example.org/inside", "android-app://com.example.app/"}
	for _, u := range urls {
		for _, ref := range refs {
			for _, typ := range []string{TypePageview, TypeEvent} {
				in := Input{Site: "demo", Type: typ, URL: u, Referrer: ref}
				if typ == TypeEvent {
					in.Name = "zoom"
				}
				r := req("81.2.69.142", uaChrome)
				fresh := newFixture(t, storetest.SQLite(t, mods()), testConfig(allFields(), time.UTC), time.Now().UTC())
				want, err := fresh.c.Prepare(context.Background(), in, r)
				if err != nil {
					t.Fatalf("%s %s: %v", u, ref, err)
				}
				for range 2 { // the first fills the cache, the second reads it
					got, err := cached.c.Prepare(context.Background(), in, r)
					if err != nil {
						t.Fatal(err)
					}
					if got.Page != want.Page || got.Query != want.Query || got.Campaign != want.Campaign || got.Search != want.Search || got.Referrer != want.Referrer {
						t.Errorf("%s (referrer %q, %s): cached %+v, afresh %+v", u, ref, typ, got, want)
					}
				}
			}
		}
	}
	for range 2 {
		if _, err := cached.c.Prepare(context.Background(), pageview("https://example.org/\x01"), req("81.2.69.142", uaChrome)); err == nil {
			t.Error("a URL with a control character was accepted")
		}
	}
	for i := range 3 * urlCacheMax {
		if _, err := cached.c.Prepare(context.Background(), pageview(fmt.Sprintf("https://example.org/p/%d", i)), req("81.2.69.142", uaChrome)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(cached.c.pages.m); n > urlCacheMax {
		t.Errorf("the page cache holds %d entries, bound %d", n, urlCacheMax)
	}
	for _, p := range cached.c.pages.m {
		if strings.Contains(fmt.Sprint(p), "ann@example.org") {
			t.Errorf("the cache holds an email: %+v", p)
		}
	}
}

// TestURLCacheKeepsOnlyWhatIsRecorded: with search terms and referrers
// not recorded, the caches hold neither; a page on no origin of the site
// is refused and not kept, and a long URL is not kept.
func TestURLCacheKeepsOnlyWhatIsRecorded(t *testing.T) {
	fields := allFields()
	delete(fields, FieldSearchTerms)
	delete(fields, FieldReferrer)
	f := newFixture(t, storetest.SQLite(t, mods()), testConfig(fields, time.UTC), time.Now().UTC())
	r := req("81.2.69.142", uaChrome)
	in := pageview("https://example.org/search?q=ann+smith+diagnosis")
	in.Referrer = "https://ann-smith.example/me"
	if _, err := f.c.Prepare(context.Background(), in, r); err != nil {
		t.Fatal(err)
	}
	for _, p := range f.c.pages.m {
		if strings.Contains(fmt.Sprint(p), "ann smith") {
			t.Errorf("the page cache holds the search terms the policy does not record: %+v", p)
		}
	}
	if len(f.c.refs.m) != 0 {
		t.Errorf("the referrer cache holds %d entries though referrers are not recorded", len(f.c.refs.m))
	}
	before := len(f.c.pages.m)
	if _, err := f.c.Prepare(context.Background(), pageview("https://elsewhere.example/a"), r); err == nil {
		t.Error("a page on another origin was accepted")
	}
	if _, err := f.c.Prepare(context.Background(), pageview("https://example.org/"+strings.Repeat("a", maxCachedURL)), r); err != nil {
		t.Fatal(err)
	}
	if n := len(f.c.pages.m); n != before {
		t.Errorf("the cache grew from %d to %d entries on a foreign origin and an overlong URL", before, n)
	}
}
