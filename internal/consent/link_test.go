package consent

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"steward/internal/clock"
)

func TestLinks(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC))
	l, err := DeriveLinks(bytes.Repeat([]byte{3}, 32), clk)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := DeriveLinks(bytes.Repeat([]byte{4}, 32), clk)
	unsub, _ := l.Sign(Claims{Scope: ScopeUnsubscribe, List: "updates", Subject: "s_1"})
	confirm, _ := l.Sign(Claims{Scope: ScopeConfirm, List: "updates", Subject: "s_1", Ref: "n1", Expires: clk.Now().Add(time.Hour)})
	foreign, _ := other.Sign(Claims{Scope: ScopeUnsubscribe, List: "updates", Subject: "s_1"})

	got, err := l.Verify(unsub, ScopeUnsubscribe)
	if err != nil || got.List != "updates" || got.Subject != "s_1" || !got.Expires.IsZero() {
		t.Fatalf("Verify(unsub): got %+v, %v", got, err)
	}
	got, err = l.Verify(confirm, ScopeConfirm)
	if err != nil || got.Ref != "n1" {
		t.Fatalf("Verify(confirm): got %+v, %v", got, err)
	}

	// Cross-list: rewrite the payload to another list, keep the tag.
	p64, tag, _ := strings.Cut(unsub, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(p64)
	crossList := base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte("|updates|"), []byte("|offers|"), 1)) + "." + tag
	otherSubject := base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte("|s_1|"), []byte("|s_2|"), 1)) + "." + tag

	bad := map[string]struct {
		token string
		scope Scope
	}{
		"empty":              {"", ScopeUnsubscribe},
		"no dot":             {"abc", ScopeUnsubscribe},
		"garbage":            {"!!!.???", ScopeUnsubscribe},
		"cross list":         {crossList, ScopeUnsubscribe},
		"other subject":      {otherSubject, ScopeUnsubscribe},
		"wrong scope":        {confirm, ScopeUnsubscribe},
		"unsub as prefs":     {unsub, ScopePreferences},
		"other key (forged)": {foreign, ScopeUnsubscribe},
		"truncated tag":      {unsub[:len(unsub)-2], ScopeUnsubscribe},
		"overlong":           {strings.Repeat("a", 600) + "." + tag, ScopeUnsubscribe},
	}
	for name, c := range bad {
		if _, err := l.Verify(c.token, c.scope); err != ErrBadLink {
			t.Errorf("%s: got %v, want ErrBadLink", name, err)
		}
	}

	clk.Advance(2 * time.Hour)
	if _, err := l.Verify(confirm, ScopeConfirm); err != ErrBadLink {
		t.Errorf("expired confirm: got %v, want ErrBadLink", err)
	}
	if _, err := l.Verify(unsub, ScopeUnsubscribe); err != nil {
		t.Errorf("unsubscribe links never expire: got %v", err)
	}
	if _, err := l.Sign(Claims{Scope: ScopeUnsubscribe, List: "a|b", Subject: "s"}); err == nil {
		t.Error("Sign with a separator in a claim: got nil error")
	}
}
