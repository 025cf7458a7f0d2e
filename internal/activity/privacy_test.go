package activity

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

// Two visits from the same IP and user agent on different days get
// different visitor hashes, and once a day has ended (plus the grace) its
// salt and its seen-keys are gone, so nothing can recompute or link its
// hashes; the next day's events still count.
func TestDayUnlinkability(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		berlin, err := time.LoadLocation("Europe/Berlin")
		if err != nil {
			t.Skip(err)
		}
		start := time.Date(2026, 3, 10, 22, 50, 0, 0, berlin) // 10 March, 22:50 local
		f := newFixture(t, db, testConfig(allFields(), berlin), start)
		visit := func() int64 {
			t.Helper()
			f.collect(t, pageview("https://example.org/same"), req("81.2.69.142", uaChrome))
			var v int64
			if err := db.QueryRowContext(context.Background(), `SELECT visitor FROM activity_events ORDER BY id DESC LIMIT 1`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		first := visit()
		if again := visit(); again != first {
			t.Fatalf("same day, same visitor: hashes %x and %x differ", first, again)
		}
		f.clk.Set(start.Add(2 * time.Hour)) // 11 March, 00:50 local
		second := visit()
		if second == first {
			t.Errorf("visits on two days share the visitor hash %x: days can be linked", first)
		}
		if got := count(t, db, `SELECT COUNT(*) FROM activity_salts`); got != 2 {
			t.Errorf("salts while 10 March is in its grace period = %d, want 2", got)
		}
		// The hash cannot be recomputed from the IP without the salt: with
		// the salt of another day, or none, it differs.
		ip := netip.MustParseAddr("81.2.69.142")
		if visitorHash([32]byte{}, "demo", ip, uaChrome) == first {
			t.Error("the visitor hash does not depend on the salt")
		}

		f.clk.Set(start.Add(70*time.Minute + saltGrace + time.Second)) // 10 March ended 5 min + 1 s ago
		n, err := f.c.DestroyExpiredSalts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("destroyed %d salts, want 1 (10 March)", n)
		}
		var day string
		if err := db.QueryRowContext(context.Background(), `SELECT day FROM activity_salts`).Scan(&day); err != nil || day != "2026-03-11" {
			t.Errorf("remaining salt is for %q (%v), want only 2026-03-11", day, err)
		}
		if got := count(t, db, `SELECT COUNT(*) FROM activity_seen WHERE day = '2026-03-10'`); got != 0 {
			t.Errorf("seen-keys of the ended day = %d, want 0", got)
		}
		if f.c.w.seen.has(dayID{"demo", "2026-03-10"}, seenKey("demo", "2026-03-10", first, DimTotal, "")) {
			t.Error("the process still remembers a key of the ended day")
		}
		// The salts cache of the process forgot the day too.
		f.c.salts.mu.Lock()
		_, cached := f.c.salts.m[saltKey{"demo", "2026-03-10"}]
		f.c.salts.mu.Unlock()
		if cached {
			t.Error("the process still holds the ended day's salt")
		}
		f.flush(t)
		if v, u := daily(t, db, DimTotal, "2026-03-11", ""); v != 1 || u != 1 {
			t.Errorf("11 March = %d views %d visitors, want 1/1", v, u)
		}
		if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 2 || u != 1 {
			t.Errorf("10 March = %d views %d visitors, want 2/1", v, u)
		}
	})
}

// The salt of a day that has ended is never recreated, even when asked.
func TestEndedDaySaltIsNotRecreated(t *testing.T) {
	db := storetest.SQLite(t, mods())
	s := newSalts(db)
	now := time.Date(2026, 3, 11, 0, 10, 0, 0, time.UTC)
	end := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	if _, err := s.get(context.Background(), "demo", "2026-03-10", end, now); err == nil {
		t.Error("a salt was created for a day that ended 10 minutes ago")
	}
	if got := count(t, db, `SELECT COUNT(*) FROM activity_salts`); got != 0 {
		t.Errorf("salts = %d, want 0", got)
	}
}

// No table and no log line holds a visitor's IP address (in any common
// spelling) or user agent after collection, on either engine.
func TestNoIPInAnyTableOrLog(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
		ips := []string{"81.2.69.142", "2a02:c7f:1234:5678:9abc:def0:1234:5678", "203.0.113.77"}
		for i, ip := range ips {
			in := pageview(fmt.Sprintf("https://example.org/p%d?utm_campaign=x", i))
			in.Referrer = "https://ref.example/"
			f.collect(t, in, req(ip, uaFirefox))
			f.collect(t, Input{Site: "demo", Type: TypeEvent, URL: "https://example.org/", Name: "signup", Props: nil}, req(ip, uaFirefox))
		}
		// Bad input and bots go through the same code and must not log the
		// IP either.
		_ = f.c.Collect(context.Background(), pageview("not a url"), req(ips[0], uaFirefox))
		_ = f.c.Collect(context.Background(), pageview("https://example.org/"), req(ips[0], "curl/8"))

		var needles []string
		for _, s := range ips {
			a := netip.MustParseAddr(s)
			needles = append(needles, s, a.StringExpanded())
			if a.Is4() {
				b := a.As4()
				needles = append(needles, hex.EncodeToString(b[:]), fmt.Sprint(binary.BigEndian.Uint32(b[:])))
			} else {
				b := a.As16()
				needles = append(needles, hex.EncodeToString(b[:]))
			}
		}
		needles = append(needles, uaFirefox, "Gecko/20100101")
		dump := dumpDatabase(t, db)
		for _, n := range needles {
			if strings.Contains(strings.ToLower(dump), strings.ToLower(n)) {
				t.Errorf("the database holds %q", n)
			}
			if strings.Contains(f.log.String(), n) {
				t.Errorf("the log holds %q", n)
			}
		}
		if !strings.Contains(dump, "Firefox") {
			t.Error("dump does not hold the browser family: the dump is not reading the tables")
		}
	})
}

// dumpDatabase renders every column of every row of every table as text
// (blobs as hex too).
func dumpDatabase(t *testing.T, db *store.DB) string {
	t.Helper()
	cols, err := db.Columns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{}
	for _, c := range cols {
		tables[c.Table] = true
	}
	var b strings.Builder
	for table := range tables {
		rows, err := db.QueryContext(context.Background(), `SELECT * FROM `+table)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		names, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(names))
			ptrs := make([]any, len(names))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					b.WriteString(hex.EncodeToString(v))
					b.WriteByte(' ')
					b.Write(v)
				default:
					fmt.Fprint(&b, v)
				}
				b.WriteByte('|')
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	return b.String()
}
