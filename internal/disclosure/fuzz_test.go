package disclosure

import (
	"encoding/json"
	"testing"
	"time"

	"steward/internal/fault"
)

// The acknowledgement parser either accepts a body of 1 to 500 event ids
// and nothing else, or refuses it as invalid: never a panic, never
// another error.
func FuzzParseAck(f *testing.F) {
	for _, s := range []string{`{"events":["msg_aaaaaaaaaaaaaaaaaaaa"]}`, `{"events":[]}`, `{"events":["x"]}`, `{}`, `[]`, `{"events":null}`,
		`{"events":["msg_aaaaaaaaaaaaaaaaaaaa"],"more":1}`, `{"events":["msg_aaaaaaaaaaaaaaaaaaaa"]} {}`, "\x00", `{"events":"msg_a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := parseAck(body)
		if err != nil {
			if !fault.Is(err, fault.Invalid) {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		if len(a.Events) == 0 || len(a.Events) > maxAckEvents {
			t.Fatalf("accepted %d events", len(a.Events))
		}
		for _, id := range a.Events {
			if !eventIDRE.MatchString(id) {
				t.Fatalf("accepted id %q", id)
			}
		}
		if _, err := json.Marshal(a); err != nil {
			t.Fatal(err)
		}
	})
}

// Verify accepts exactly the signature Sign makes, whatever the headers
// hold, and never panics.
func FuzzVerify(f *testing.F) {
	key := []byte("key")
	now := time.Unix(1_800_000_000, 0)
	f.Add("msg_1", "1800000000", Sign(key, "msg_1", 1_800_000_000, []byte("{}")), []byte("{}"))
	f.Add("", "", "", []byte(nil))
	f.Add("msg_1", "-1", "v1,AAAA v1,BBBB", []byte("x"))
	f.Add("msg_1", "99999999999999999999", "v2,xx", []byte("x"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		err := Verify(key, id, ts, sig, body, now)
		if err == nil {
			if id == "" || ts != "1800000000" && ts != "+1800000000" && !nearNow(ts, now) {
				t.Fatalf("accepted id %q ts %q", id, ts)
			}
			return
		}
		if !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("error %v is not unauthorized", err)
		}
	})
}

func nearNow(ts string, now time.Time) bool {
	var n int64
	if json.Unmarshal([]byte(ts), &n) != nil {
		return true // a form ParseInt reads and json does not (a leading +): checked by the signature alone
	}
	d := now.Sub(time.Unix(n, 0))
	return d <= Tolerance && d >= -Tolerance
}
