package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"steward/internal/fault"
)

// decode reads the request body, a single JSON object, into v. It is the
// only way handlers read JSON: the media type must be JSON (else 415), the
// body fits the size limit (else 413), is valid UTF-8 and escapes no lone
// UTF-16 surrogate (encoding/json would otherwise replace either with
// U+FFFD silently), has no unknown fields, no wrong types and nothing after
// the object (else 400 naming the field where there is one).
func decode(r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("", "the request body could not be read", err)
	}
	if !utf8.Valid(body) {
		return badRequest("", "the request body is not valid UTF-8", nil)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return badRequest("", "the request body is empty; send a JSON object", nil)
	}
	if trimmed[0] != '{' {
		return badRequest("", "the request body must be a JSON object", nil)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "unexpected data after the JSON object", nil)
	}
	if loneSurrogate(body) {
		return badRequest("", "the request body escapes half of a UTF-16 surrogate pair", nil)
	}
	return nil
}

// loneSurrogate reports whether a JSON text holds a \u escape of a UTF-16
// surrogate that is not a high one followed by a low one ("\ud800"). A
// backslash in JSON only starts an escape inside a string, so no string
// tracking is needed.
func loneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++
		if i+4 >= len(b) || b[i] != 'u' {
			continue
		}
		r, err := strconv.ParseUint(string(b[i+1:i+5]), 16, 16)
		i += 4
		switch {
		case err != nil || r < 0xd800 || r > 0xdfff:
		case r >= 0xdc00:
			return true
		case i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u':
			return true
		default:
			lo, err := strconv.ParseUint(string(b[i+3:i+7]), 16, 16)
			if err != nil || lo < 0xdc00 || lo > 0xdfff {
				return true
			}
			i += 6
		}
	}
	return false
}

// requireJSON accepts application/json (and JSON merge patches), in UTF-8.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && mt != "application/merge-patch+json") {
		return fault.New(fault.Unsupported, "send the body as Content-Type: application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fault.New(fault.Unsupported, "JSON bodies must be UTF-8")
	}
	return nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("", "the body is not well-formed JSON (at byte "+strconv.FormatInt(syn.Offset, 10)+")", err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return badRequest("", "the body has a value of the wrong type", err)
		}
		return badRequest(field, field+" must be "+fault.JSONKind(typ.Type), err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the JSON body ends too early", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this; its message is
		// stable: json: unknown field "name".
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(name, "unknown field "+name, err)
	case errors.As(err, new(*http.MaxBytesError)):
		return err
	default:
		return badRequest("", "the body could not be decoded", err)
	}
}

// encode writes v as a JSON response, or returns the error of marshalling
// it before writing anything. It is the only way handlers write JSON.
func (s *server) encode(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("web: encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return nil
}

// writeJSON writes an already-built value; marshalling problems and plain
// maps cannot fail.
func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// parseForm parses an urlencoded form body, refusing oversized bodies and
// invalid UTF-8 (a browser never sends it; anything else is refused before
// it reaches a domain package).
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("", "the form could not be read", err)
	}
	for k, vs := range r.Form {
		if !utf8.ValidString(k) {
			return badRequest("", "the form is not valid UTF-8", nil)
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return badRequest(k, "the form is not valid UTF-8", nil)
			}
		}
	}
	return nil
}
