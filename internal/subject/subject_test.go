package subject_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/mail"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/fault"
	"steward/internal/registry"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func mods() []store.Migrations { return schema.Migrations() }

func TestNormalizeEmail(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".org" // 254 bytes
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Alice@Example.ORG", "alice@example.org", true},
		{"  bob@example.org\u00a0 ", "bob@example.org", true},
		{"carol+news@example.co.uk", "carol+news@example.co.uk", true},
		{"ÄNNE@Exämple.org", "änne@exämple.org", true},
		{"用户@例子.广告", "用户@例子.广告", true},
		{long, long, true},
		{long[:len(long)-4] + "x.org", "", false}, // 255 bytes
		{strings.Repeat("a", 65) + "@example.org", "", false},
		{"alice@example.org\r\nBcc: eve@example.org", "", false},
		{"alice@example.org\n", "", false},
		{"ali\x00ce@example.org", "", false},
		{"ali\u0085ce@example.org", "", false},
		{"\xff@example.org", "", false},
		{"", "", false},
		{"   ", "", false},
		{"alice", "", false},
		{"@example.org", "", false},
		{"alice@", "", false},
		{"alice@localhost", "", false},
		{"alice@.example.org", "", false},
		{"alice@example.org.", "", false},
		{"alice@[192.0.2.1]", "", false},
		{"Alice <alice@example.org>", "", false},
		{`"alice smith"@example.org`, "", false},
		{"alice..smith@example.org", "", false},
		{"alice@exa mple.org", "", false},
		{"a@b@example.org", "", false},
		{"alice@example.org (comment)", "", false},
	}
	for _, tt := range tests {
		got, err := subject.NormalizeEmail(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
			}
			if again, err := subject.NormalizeEmail(got); again != got || err != nil {
				t.Errorf("NormalizeEmail(%q) = %q, %v; want it unchanged", got, again, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("NormalizeEmail(%q) = %q, nil; want an error", tt.in, got)
			continue
		}
		if fault.CodeOf(err) != fault.Invalid || fault.FieldOf(err) != "email" {
			t.Errorf("NormalizeEmail(%q) error = %v; want invalid on field email", tt.in, err)
		}
	}
}

// TestNormalizeEmailLookAlikes: two addresses that look the same are the
// same address, or one of them is refused.
func TestNormalizeEmailLookAlikes(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // "" when refused
		reason   string // in the message of a refusal
	}{
		// Compatibility forms become the characters they stand for.
		{"full-width", "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｏｒｇ", "alice@example.org", ""},
		{"full-width capital", "Ａlice@Example.org", "alice@example.org", ""},
		{"ligature", "\ufb01nance@example.org", "finance@example.org", ""},
		{"combining accent", "jose\u0301@example.es", "josé@example.es", ""},
		{"ideographic space around", "\u3000alice@example.org\u3000", "alice@example.org", ""},
		// Invisible and formatting characters.
		{"zero-width space", "alice\u200b@example.org", "", "invisible"},
		{"zero-width joiner in the domain", "alice@exam\u200dple.org", "", "invisible"},
		{"zero-width no-break space", "\ufeffalice@example.org", "", "invisible"},
		{"right-to-left override", "\u202egro.elpmaxe@ecila", "", "invisible"},
		{"left-to-right mark", "alice\u200e@example.org", "", "invisible"},
		{"soft hyphen", "ali\u00adce@example.org", "", "invisible"},
		{"word joiner", "alice@example\u2060.org", "", "invisible"},
		{"variation selector", "alice\ufe0f@example.org", "", "invisible"},
		{"combining grapheme joiner", "alic\u034fe@example.org", "", "invisible"},
		{"Hangul filler", "al\u3164ice@example.org", "", "invisible"},
		{"private use", "alice\ue000@example.org", "", "invisible"},
		{"line separator", "alice\u2028@example.org", "", "invisible"},
		{"tag character", "alice\U000e0041@example.org", "", "invisible"},
		{"no-break space inside", "alice\u00a0smith@example.org", "", "space"},
		{"ideographic space inside", "alice\u3000smith@example.org", "", "space"},
		// Look-alike letters from another script.
		{"Cyrillic a in a Latin local part", "\u0430lice@example.org", "", "Cyrillic and Latin"},
		{"Cyrillic a in a Latin domain", "alice@ex\u0430mple.org", "", "Cyrillic and Latin"},
		{"Greek omicron in a Latin local part", "hell\u03bf@example.org", "", "Greek and Latin"},
		{"Cyrillic and Greek", "\u0430\u03b1@example.org", "", "Cyrillic and Greek"},
		{"Cyrillic o in a Latin top-level domain", "alice@example.\u043erg", "", "Cyrillic and Latin"},
		// Good international addresses.
		{"all Cyrillic", "Алиса@Пример.рф", "алиса@пример.рф", ""},
		{"Cyrillic local part, Latin domain", "алиса@example.org", "алиса@example.org", ""},
		{"Cyrillic label beside a Latin one", "alice@пример.com", "alice@пример.com", ""},
		{"Greek", "ελένη@παράδειγμα.ελ", "ελένη@παράδειγμα.ελ", ""},
		{"Latin with accents", "José.García@Ejemplo.es", "josé.garcía@ejemplo.es", ""},
		{"German", "jürgen.groß@bücher.de", "jürgen.groß@bücher.de", ""},
		{"Chinese", "用户@例子.广告", "用户@例子.广告", ""},
		{"Japanese kana and kanji", "たなか太郎@例え.jp", "たなか太郎@例え.jp", ""},
		{"Japanese with Latin", "taro田中@example.jp", "taro田中@example.jp", ""},
		{"Korean", "김철수@예시.한국", "김철수@예시.한국", ""},
		{"Hindi", "राम@उदाहरण.भारत", "राम@उदाहरण.भारत", ""},
		{"Arabic", "سلمى@مثال.شبكة", "سلمى@مثال.شبكة", ""},
		{"Thai", "สมชาย@ตัวอย่าง.ไทย", "สมชาย@ตัวอย่าง.ไทย", ""},
		{"digits and punctuation with Cyrillic", "иван.2026+новости@пример.рф", "иван.2026+новости@пример.рф", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := subject.NormalizeEmail(tt.in)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				if again, err := subject.NormalizeEmail(got); again != got || err != nil {
					t.Fatalf("NormalizeEmail(%q) = %q, %v; want it unchanged", got, again, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NormalizeEmail(%q) = %q, want it refused", tt.in, got)
			}
			if fault.CodeOf(err) != fault.Invalid || fault.FieldOf(err) != "email" || !strings.Contains(fault.MessageOf(err), tt.reason) {
				t.Fatalf("NormalizeEmail(%q): %v; want invalid on field email saying %q", tt.in, err, tt.reason)
			}
		})
	}
}

// FuzzNormalizeEmail: an address is refused with an invalid fault on
// field email, or comes out as a lower-case, NFKC-normal bare address
// without control, invisible or space characters that net/mail reads back
// unchanged and that normalises to itself.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"Alice@Example.ORG", "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｏｒｇ", "alice\u200b@example.org", "\u0430lice@example.org",
		"алиса@пример.рф", "たなか太郎@例え.jp", "\u202egro.elpmaxe@ecila", "alice@example.org\r\nBcc: eve@example.org",
		`"alice smith"@example.org`, "Alice <alice@example.org>", "\ufb01@example.org", "\u0130@example.org"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := subject.NormalizeEmail(in)
		if err != nil {
			if fault.CodeOf(err) != fault.Invalid || fault.FieldOf(err) != "email" || fault.MessageOf(err) == "" {
				t.Fatalf("NormalizeEmail(%q): %v, want an invalid fault on field email", in, err)
			}
			return
		}
		switch {
		case !utf8.ValidString(got) || len(got) > 254 || strings.Count(got, "@") != 1:
			t.Fatalf("NormalizeEmail(%q) = %q: not one valid address of at most 254 bytes", in, got)
		case strings.ToLower(got) != got || !norm.NFKC.IsNormalString(got):
			t.Fatalf("NormalizeEmail(%q) = %q: not lower-case NFKC", in, got)
		case strings.ContainsFunc(got, func(r rune) bool {
			return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Z, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
		}):
			t.Fatalf("NormalizeEmail(%q) = %q holds a control, invisible or space character", in, got)
		}
		if a, err := mail.ParseAddress(got); err != nil || a.Address != got || a.Name != "" {
			t.Fatalf("NormalizeEmail(%q) = %q, which net/mail reads as %v, %v", in, got, a, err)
		}
		if again, err := subject.NormalizeEmail(got); again != got || err != nil {
			t.Fatalf("NormalizeEmail(%q) = %q, then %q, %v", in, got, again, err)
		}
	})
}

func TestTablesAreValid(t *testing.T) {
	if _, err := registry.New(subject.Tables()); err != nil {
		t.Fatal(err)
	}
}

func TestTablesMatchSchema(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		reg, err := registry.New(subject.Tables())
		if err != nil {
			t.Fatal(err)
		}
		cols, err := db.Columns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var live []registry.LiveColumn
		for _, c := range cols {
			if _, ours := reg.Table(c.Table); ours {
				live = append(live, registry.LiveColumn{Table: c.Table, Name: c.Name})
			}
		}
		if p := reg.Undeclared(live, "schema_migrations"); len(p) > 0 {
			t.Fatalf("registry and schema disagree:\n%s", strings.Join(p, "\n"))
		}
	})
}

func TestSubjects(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		s := subject.NewStore(db, clk)
		d := doortest.New(t, db, clock.NewFake(t0), nil, s)

		t.Run("create, get and find by email", func(t *testing.T) {
			m, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, " Dana@Example.org ", "signup", 3)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(m.ID, "s_") || len(m.ID) != 22 {
				t.Errorf("id = %q, want s_ and 20 characters", m.ID)
			}
			got, err := s.Get(ctx, db, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != m.ID || got.Kind != subject.KindMember || !got.HasEmail || got.Source != "signup" || got.PolicyVersion != 3 || !got.CreatedAt.Equal(t0) {
				t.Errorf("Get = %+v", got)
			}
			if e := doortest.Email(t, d, db, got); e != "dana@example.org" {
				t.Errorf("email = %q, want dana@example.org", e)
			}
			if bytes.Contains(dump(t, db, `SELECT email_sealed FROM subjects WHERE id = '`+m.ID+`'`), []byte("dana")) {
				t.Error("the address is stored in plaintext")
			}
			found, err := s.FindByEmail(ctx, db, d, "DANA@example.org")
			if err != nil || found.ID != m.ID {
				t.Errorf("FindByEmail = %v, %v; want %s", found.ID, err, m.ID)
			}
			if _, err := s.Create(ctx, db, d, door.Subject(), subject.KindEmailOnly, "dana@example.org", "comment", 3); fault.CodeOf(err) != fault.Conflict {
				t.Errorf("Create with a taken email: error %v, want conflict", err)
			}
			if _, err := s.Create(ctx, db, d, door.Subject(), subject.KindEmailOnly, "", "comment", 3); fault.CodeOf(err) != fault.Invalid {
				t.Errorf("Create email-only without an email: error %v, want invalid", err)
			}
			if _, err := s.Create(ctx, db, d, door.Subject(), "robot", "r@example.org", "comment", 3); fault.CodeOf(err) != fault.Invalid {
				t.Errorf("Create with an unknown kind: error %v, want invalid", err)
			}
			if _, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "", "sign up\n", 3); fault.CodeOf(err) != fault.Invalid {
				t.Errorf("Create with a bad source: error %v, want invalid", err)
			}
			if _, err := s.Get(ctx, db, "s_nosuchsubject"); fault.CodeOf(err) != fault.NotFound {
				t.Errorf("Get unknown: error %v, want not_found", err)
			}
			if _, err := s.FindByEmail(ctx, db, d, "nobody@example.org"); fault.CodeOf(err) != fault.NotFound {
				t.Errorf("FindByEmail unknown: error %v, want not_found", err)
			}
		})

		t.Run("EnsureByEmail is idempotent and returns a member as it is", func(t *testing.T) {
			a, created, err := s.EnsureByEmail(ctx, db, d, door.Subject(), "Erin@example.org", "comment", 1)
			if err != nil || !created {
				t.Fatalf("first EnsureByEmail = %v, %v; want created", created, err)
			}
			if a.Kind != subject.KindEmailOnly || doortest.Email(t, d, db, a) != "erin@example.org" {
				t.Errorf("got %+v, want an email-only subject for erin@example.org", a)
			}
			b, created, err := s.EnsureByEmail(ctx, db, d, door.Subject(), " erin@EXAMPLE.org", "newsletter", 2)
			if err != nil || created || b.ID != a.ID {
				t.Fatalf("second EnsureByEmail = %s, %v, %v; want %s, not created", b.ID, created, err, a.ID)
			}
			if b.Source != "comment" {
				t.Errorf("source = %q, want the first one (comment)", b.Source)
			}
			m, _ := s.FindByEmail(ctx, db, d, "dana@example.org")
			c, created, err := s.EnsureByEmail(ctx, db, d, door.Subject(), "dana@example.org", "comment", 3)
			if err != nil || created || c.ID != m.ID || c.Kind != subject.KindMember {
				t.Errorf("EnsureByEmail on a member's address = %+v, %v, %v; want the member", c, created, err)
			}
		})

		t.Run("EnsureByEmail races create one subject", func(t *testing.T) {
			var wg sync.WaitGroup
			ids := make([]string, 8)
			errs := make([]error, 8)
			for i := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sub, _, err := s.EnsureByEmail(ctx, db, d, door.Subject(), "race@example.org", "comment", 1)
					ids[i], errs[i] = sub.ID, err
				}()
			}
			wg.Wait()
			for i := range ids {
				if errs[i] != nil || ids[i] != ids[0] {
					t.Fatalf("racer %d got %s, %v; want %s", i, ids[i], errs[i], ids[0])
				}
			}
		})

		t.Run("SetEmail and SetKind", func(t *testing.T) {
			a, _, _ := s.EnsureByEmail(ctx, db, d, door.Subject(), "fay@example.org", "comment", 1)
			if err := s.SetEmail(ctx, db, d, door.Subject(), a.ID, "dana@example.org"); fault.CodeOf(err) != fault.Conflict {
				t.Errorf("SetEmail to a taken address: error %v, want conflict", err)
			}
			if err := s.SetEmail(ctx, db, d, door.Subject(), a.ID, "fay\r\n@example.org"); fault.CodeOf(err) != fault.Invalid {
				t.Errorf("SetEmail with CR/LF: error %v, want invalid", err)
			}
			if err := s.SetEmail(ctx, db, d, door.Subject(), a.ID, "Fay.New@example.org"); err != nil {
				t.Fatal(err)
			}
			if err := s.SetKind(ctx, db, a.ID, subject.KindMember); err != nil {
				t.Fatal(err)
			}
			got, _ := s.Get(ctx, db, a.ID)
			if doortest.Email(t, d, db, got) != "fay.new@example.org" || got.Kind != subject.KindMember {
				t.Errorf("after SetEmail and SetKind got %+v", got)
			}
			if err := s.SetKind(ctx, db, a.ID, "robot"); fault.CodeOf(err) != fault.Invalid {
				t.Errorf("SetKind unknown: error %v, want invalid", err)
			}
			if err := s.SetEmail(ctx, db, d, door.Subject(), "s_nosuchsubject", "x@example.org"); fault.CodeOf(err) != fault.NotFound {
				t.Errorf("SetEmail unknown subject: error %v, want not_found", err)
			}
		})
	})
}

func TestState(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		s := subject.NewStore(db, clk)
		d := doortest.New(t, db, clock.NewFake(t0), nil, s)
		m, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "gus@example.org", "signup", 1)
		if err != nil {
			t.Fatal(err)
		}

		st, err := s.State(ctx, db, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.SubjectID != m.ID || len(st.Consents) != 0 || len(st.Objections) != 0 || st.Restricted || st.MarketingSuppressed || st.LegalHold {
			t.Fatalf("fresh state = %+v, want empty for %s", st, m.ID)
		}
		if _, err := s.State(ctx, db, "s_nosuchsubject"); fault.CodeOf(err) != fault.NotFound {
			t.Fatalf("State of an unknown id: error %v, want not_found", err)
		}

		steps := []struct {
			name  string
			set   func() error
			check func(st stateView) bool
		}{
			{"consent given", func() error { return s.SetConsent(ctx, db, m.ID, "marketing", true) },
				func(v stateView) bool { return v.Consents["marketing"] }},
			{"second consent", func() error { return s.SetConsent(ctx, db, m.ID, "analytics", true) },
				func(v stateView) bool { return v.Consents["marketing"] && v.Consents["analytics"] }},
			{"consent withdrawn", func() error { return s.SetConsent(ctx, db, m.ID, "marketing", false) },
				func(v stateView) bool { return !v.Consents["marketing"] && v.Consents["analytics"] }},
			{"objection", func() error { return s.SetObjection(ctx, db, m.ID, "analytics", true) },
				func(v stateView) bool { return v.Objections["analytics"] && v.Consents["analytics"] }},
			{"restriction of two categories", func() error {
				return s.SetRestriction(ctx, db, m.ID, true, []string{"payment", "contact", "payment"})
			}, func(v stateView) bool {
				return v.Restricted && reflect.DeepEqual(v.RestrictedCategories, []string{"contact", "payment"})
			}},
			{"restriction of everything", func() error { return s.SetRestriction(ctx, db, m.ID, true, nil) },
				func(v stateView) bool { return v.Restricted && len(v.RestrictedCategories) == 0 }},
			{"marketing suppressed", func() error { return s.SetMarketingSuppressed(ctx, db, m.ID, true) },
				func(v stateView) bool { return v.MarketingSuppressed && v.Restricted }},
			{"legal hold", func() error { return s.SetLegalHold(ctx, db, m.ID, true, "court order 2026-17") },
				func(v stateView) bool { return v.LegalHold && v.MarketingSuppressed }},
			{"restriction lifted", func() error { return s.SetRestriction(ctx, db, m.ID, false, []string{"contact"}) },
				func(v stateView) bool { return !v.Restricted && len(v.RestrictedCategories) == 0 && v.LegalHold }},
			{"objection lifted", func() error { return s.SetObjection(ctx, db, m.ID, "analytics", false) },
				func(v stateView) bool { return !v.Objections["analytics"] && v.Consents["analytics"] }},
			{"suppression lifted", func() error { return s.SetMarketingSuppressed(ctx, db, m.ID, false) },
				func(v stateView) bool { return !v.MarketingSuppressed }},
		}
		for _, step := range steps {
			clk.Advance(time.Minute)
			if err := step.set(); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			st, err := s.State(ctx, db, m.ID)
			if err != nil {
				t.Fatalf("%s: State: %v", step.name, err)
			}
			if !step.check(stateView(*st)) {
				t.Fatalf("%s: State = %+v", step.name, *st)
			}
		}

		t.Run("each change stamps updated_at", func(t *testing.T) {
			clk.Advance(time.Hour)
			if err := s.SetConsent(ctx, db, m.ID, "marketing", true); err != nil {
				t.Fatal(err)
			}
			var consentAt, updatedAt time.Time
			if err := db.QueryRowContext(ctx, `SELECT consent_at, updated_at FROM subject_purpose_state WHERE subject_id = $1 AND purpose = 'marketing'`, m.ID).Scan(&consentAt, &updatedAt); err != nil {
				t.Fatal(err)
			}
			if !consentAt.Equal(clk.Now()) || !updatedAt.Equal(clk.Now()) {
				t.Errorf("consent_at, updated_at = %v, %v; want %v", consentAt, updatedAt, clk.Now())
			}
			var flagsAt time.Time
			db.QueryRowContext(ctx, `SELECT updated_at FROM subject_state WHERE subject_id = $1`, m.ID).Scan(&flagsAt)
			if !flagsAt.Before(clk.Now()) {
				t.Errorf("subject_state.updated_at = %v moved without a change of its own", flagsAt)
			}
		})

		t.Run("State inside a transaction", func(t *testing.T) {
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				if err := s.SetObjection(ctx, tx, m.ID, "profiling", true); err != nil {
					return err
				}
				st, err := s.State(ctx, tx, m.ID)
				if err != nil {
					return err
				}
				if !st.Objections["profiling"] {
					t.Errorf("State in the transaction misses its own write: %+v", *st)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})

		t.Run("legal hold reads back with its reason", func(t *testing.T) {
			on, reason, err := s.LegalHold(ctx, db, m.ID)
			if err != nil || !on || reason != "court order 2026-17" {
				t.Fatalf("LegalHold = %v, %q, %v", on, reason, err)
			}
			if err := s.SetLegalHold(ctx, db, m.ID, true, "  "); fault.CodeOf(err) != fault.Invalid {
				t.Errorf("hold without a reason: error %v, want invalid", err)
			}
			if _, _, err := s.LegalHold(ctx, db, "s_nosuchsubject"); fault.CodeOf(err) != fault.NotFound {
				t.Errorf("LegalHold of unknown: error %v, want not_found", err)
			}
		})

		t.Run("bad input and unknown subjects are refused", func(t *testing.T) {
			cases := []struct {
				name string
				err  error
				want fault.Code
			}{
				{"consent, unknown subject", s.SetConsent(ctx, db, "s_nosuchsubject", "marketing", true), fault.NotFound},
				{"objection, unknown subject", s.SetObjection(ctx, db, "s_nosuchsubject", "marketing", true), fault.NotFound},
				{"restriction, unknown subject", s.SetRestriction(ctx, db, "s_nosuchsubject", true, nil), fault.NotFound},
				{"suppression, unknown subject", s.SetMarketingSuppressed(ctx, db, "s_nosuchsubject", true), fault.NotFound},
				{"hold, unknown subject", s.SetLegalHold(ctx, db, "s_nosuchsubject", true, "x"), fault.NotFound},
				{"purpose with a quote", s.SetConsent(ctx, db, m.ID, "market'; DROP TABLE subjects;--", true), fault.Invalid},
				{"empty purpose", s.SetObjection(ctx, db, m.ID, "", true), fault.Invalid},
				{"category with a comma", s.SetRestriction(ctx, db, m.ID, true, []string{"a,b"}), fault.Invalid},
			}
			for _, c := range cases {
				if fault.CodeOf(c.err) != c.want {
					t.Errorf("%s: error %v, want %s", c.name, c.err, c.want)
				}
			}
		})
	})
}

type stateView struct {
	SubjectID            string
	Consents             map[string]bool
	Objections           map[string]bool
	Restricted           bool
	RestrictedCategories []string
	MarketingSuppressed  bool
	LegalHold            bool
	BoundVersion         int
}

func TestMerge(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		s := subject.NewStore(db, clk)
		d := doortest.New(t, db, clock.NewFake(t0), nil, s)
		// A stand-in for another package's table that names subjects.
		if _, err := db.ExecContext(ctx, `CREATE TABLE notes (id TEXT PRIMARY KEY, subject_id TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		var calls []string
		s.OnMerge(func(ctx context.Context, tx *sql.Tx, from, into string) error {
			calls = append(calls, from+">"+into)
			_, err := tx.ExecContext(ctx, `UPDATE notes SET subject_id = $2 WHERE subject_id = $1`, from, into)
			return err
		})

		guest, _, err := s.EnsureByEmail(ctx, db, d, door.Subject(), "hal@example.org", "comment", 1)
		if err != nil {
			t.Fatal(err)
		}
		member, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "", "signup", 2)
		if err != nil {
			t.Fatal(err)
		}
		db.ExecContext(ctx, `INSERT INTO notes (id, subject_id) VALUES ('n1', $1), ('n2', $1), ('n3', $2)`, guest.ID, member.ID)

		// The guest consented to newsletters early and withdrew from
		// analytics late; the member did the opposite in between.
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.SetConsent(ctx, db, guest.ID, "newsletter", true))
		clk.Advance(time.Hour)
		must(s.SetConsent(ctx, db, member.ID, "newsletter", false))
		must(s.SetConsent(ctx, db, member.ID, "analytics", true))
		clk.Advance(time.Hour)
		must(s.SetConsent(ctx, db, guest.ID, "analytics", false))
		must(s.SetConsent(ctx, db, guest.ID, "surveys", true))
		must(s.SetObjection(ctx, db, guest.ID, "profiling", true))
		must(s.SetObjection(ctx, db, member.ID, "research", true))
		must(s.SetRestriction(ctx, db, guest.ID, true, []string{"contact"}))
		must(s.SetRestriction(ctx, db, member.ID, true, []string{"activity"}))
		must(s.SetMarketingSuppressed(ctx, db, guest.ID, true))
		must(s.SetLegalHold(ctx, db, guest.ID, true, "case 12"))

		t.Run("a failing hook aborts the merge", func(t *testing.T) {
			boom := errors.New("boom")
			s2 := subject.NewStore(db, clk)
			d := doortest.New(t, db, clock.NewFake(t0), nil, s2)
			s2.OnMerge(func(ctx context.Context, tx *sql.Tx, from, into string) error { return boom })
			err := db.InTx(ctx, func(tx *sql.Tx) error { return s2.Merge(ctx, tx, guest.ID, member.ID) })
			if !errors.Is(err, boom) {
				t.Fatalf("Merge error = %v, want boom", err)
			}
			g, _ := s.Get(ctx, db, guest.ID)
			if g.MergedInto != "" || doortest.Email(t, d, db, g) != "hal@example.org" {
				t.Fatalf("after a failed merge the guest is %+v", g)
			}
		})

		if err := db.InTx(ctx, func(tx *sql.Tx) error { return s.Merge(ctx, tx, guest.ID, member.ID) }); err != nil {
			t.Fatal(err)
		}

		if want := []string{guest.ID + ">" + member.ID}; !reflect.DeepEqual(calls, want) {
			t.Errorf("hook calls = %v, want %v", calls, want)
		}
		var moved int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM notes WHERE subject_id = $1`, member.ID).Scan(&moved)
		if moved != 3 {
			t.Errorf("notes of the member = %d, want 3 (the hook re-pointed the guest's)", moved)
		}
		g, _ := s.Get(ctx, db, guest.ID)
		if g.MergedInto != member.ID || g.HasEmail {
			t.Errorf("merged guest = %+v, want merged_into %s and no email", g, member.ID)
		}
		m, _ := s.Get(ctx, db, member.ID)
		if doortest.Email(t, d, db, m) != "hal@example.org" {
			t.Errorf("member email = %q, want the guest's address moved over", doortest.Email(t, d, db, m))
		}
		if got, err := s.FindByEmail(ctx, db, d, "hal@example.org"); err != nil || got.ID != member.ID {
			t.Errorf("FindByEmail after merge = %s, %v; want the member", got.ID, err)
		}

		st, err := s.State(ctx, db, member.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := stateView{
			SubjectID:            member.ID,
			Consents:             map[string]bool{"analytics": false, "surveys": true, "newsletter": false},
			Objections:           map[string]bool{"profiling": true, "research": true},
			Restricted:           true,
			RestrictedCategories: []string{"activity", "contact"},
			MarketingSuppressed:  true,
			LegalHold:            true,
		}
		got := stateView(*st)
		if got.Consents["analytics"] || !got.Consents["surveys"] || got.Consents["newsletter"] ||
			!reflect.DeepEqual(got.Objections, want.Objections) || !got.Restricted ||
			!reflect.DeepEqual(got.RestrictedCategories, want.RestrictedCategories) || !got.MarketingSuppressed || !got.LegalHold {
			t.Errorf("merged state = %+v, want %+v", got, want)
		}
		if _, reason, _ := s.LegalHold(ctx, db, member.ID); reason != "case 12" {
			t.Errorf("hold reason = %q, want the guest's", reason)
		}

		old, err := s.State(ctx, db, guest.ID)
		if err != nil || old.SubjectID != member.ID || !old.Objections["profiling"] {
			t.Errorf("State of the merged id = %+v, %v; want the member's state", old, err)
		}
		if err := s.SetObjection(ctx, db, guest.ID, "analytics", true); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.State(ctx, db, member.ID); !st.Objections["analytics"] {
			t.Errorf("an objection through the merged id did not reach the member")
		}
		from, err := s.MergedFrom(ctx, db, member.ID)
		if err != nil || !reflect.DeepEqual(from, []string{guest.ID}) {
			t.Errorf("MergedFrom = %v, %v; want [%s]", from, err, guest.ID)
		}

		t.Run("merges that make no sense are refused", func(t *testing.T) {
			other, _ := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "ivy@example.org", "signup", 1)
			cases := []struct {
				name     string
				from, to string
				want     fault.Code
			}{
				{"into itself", member.ID, member.ID, fault.Invalid},
				{"an already merged subject", guest.ID, other.ID, fault.Conflict},
				{"into a merged subject", other.ID, guest.ID, fault.Conflict},
				{"an unknown subject", "s_nosuchsubject", member.ID, fault.NotFound},
			}
			for _, c := range cases {
				err := db.InTx(ctx, func(tx *sql.Tx) error { return s.Merge(ctx, tx, c.from, c.to) })
				if fault.CodeOf(err) != c.want {
					t.Errorf("%s: error %v, want %s", c.name, err, c.want)
				}
			}
		})
	})
}

func TestDelete(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		s := subject.NewStore(db, clk)
		d := doortest.New(t, db, clock.NewFake(t0), nil, s)
		m, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "jo@example.org", "signup", 1)
		if err != nil {
			t.Fatal(err)
		}
		s.SetConsent(ctx, db, m.ID, "marketing", true)
		s.SetLegalHold(ctx, db, m.ID, true, "tax audit")
		if err := s.Delete(ctx, db, m.ID); fault.CodeOf(err) != fault.Conflict {
			t.Fatalf("Delete under a legal hold: error %v, want conflict", err)
		}
		if err := s.SetLegalHold(ctx, db, m.ID, false, ""); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		if err := s.Delete(ctx, db, m.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, db, m.ID); err != nil {
			t.Fatalf("second Delete: %v, want nil (idempotent)", err)
		}
		got, err := s.Get(ctx, db, m.ID)
		if err != nil {
			t.Fatalf("the tombstone is gone: %v", err)
		}
		if got.HasEmail || !got.ErasedAt.Equal(clk.Now()) {
			t.Errorf("erased subject = %+v, want no email and erased_at %v", got, clk.Now())
		}
		var n int
		db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM subject_state WHERE subject_id = $1) + (SELECT COUNT(*) FROM subject_purpose_state WHERE subject_id = $1)`, m.ID).Scan(&n)
		if n != 0 {
			t.Errorf("%d state rows remain after Delete", n)
		}
		if _, err := s.FindByEmail(ctx, db, d, "jo@example.org"); fault.CodeOf(err) != fault.NotFound {
			t.Errorf("FindByEmail after Delete: error %v, want not_found", err)
		}
		st, err := s.State(ctx, db, m.ID)
		if err != nil || len(st.Consents) != 0 {
			t.Errorf("State after Delete = %+v, %v; want an empty state", st, err)
		}
		if err := s.SetConsent(ctx, db, m.ID, "marketing", true); fault.CodeOf(err) != fault.Conflict {
			t.Errorf("SetConsent on an erased subject: error %v, want conflict", err)
		}
		again, created, err := s.EnsureByEmail(ctx, db, d, door.Subject(), "jo@example.org", "comment", 1)
		if err != nil || !created || again.ID == m.ID {
			t.Errorf("the address after erasure = %s, %v, %v; want a new subject", again.ID, created, err)
		}
		if err := s.Delete(ctx, db, "s_nosuchsubject"); fault.CodeOf(err) != fault.NotFound {
			t.Errorf("Delete unknown: error %v, want not_found", err)
		}
	})
}

func TestStateIsOneIndexedQuery(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		plan, err := subject.ExplainState(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("plan:\n%s", plan)
		low := strings.ToLower(plan)
		if db.Engine == store.SQLite {
			if strings.Contains(low, "scan s") || strings.Contains(low, "scan st") || strings.Contains(low, "scan p") {
				t.Fatalf("State scans a table:\n%s", plan)
			}
		} else if strings.Contains(low, "seq scan") {
			t.Fatalf("State scans without an index:\n%s", plan)
		}
	})
}

func BenchmarkState(b *testing.B) {
	db := storetest.SQLite(b, mods())
	ctx := context.Background()
	s := subject.NewStore(db, clock.NewFake(t0))
	d := doortest.New(b, db, clock.NewFake(t0), nil, s)
	var id string
	for i := range 1000 {
		m, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "", "signup", 1)
		if err != nil {
			b.Fatal(err)
		}
		if i == 500 {
			id = m.ID
		}
		s.SetConsent(ctx, db, m.ID, "marketing", true)
		s.SetObjection(ctx, db, m.ID, "analytics", true)
		s.SetMarketingSuppressed(ctx, db, m.ID, i%2 == 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.State(ctx, db, id); err != nil {
			b.Fatal(err)
		}
	}
}

// dump returns the first column of a one-row query, as stored.
func dump(t *testing.T, db *store.DB, query string) []byte {
	t.Helper()
	var b []byte
	if err := db.QueryRowContext(context.Background(), query).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}
