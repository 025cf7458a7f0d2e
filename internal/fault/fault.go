// Package fault defines the coded errors every domain package returns. The
// web layer turns a code into an HTTP status and an RFC 9457 problem body;
// the message of a fault is safe to show to the client, the wrapped cause is
// only logged.
package fault

import (
	"errors"
	"fmt"
	"reflect"
)

// Code is a stable, machine-readable error class. It becomes the last path
// segment of the problem type URI, so codes never change once published.
type Code string

const (
	Invalid           Code = "invalid"        // the input is malformed or violates a rule
	NotFound          Code = "not_found"      // no such thing, or not visible to the caller
	Unauthorized      Code = "unauthorized"   // no valid credentials
	Forbidden         Code = "forbidden"      // credentials valid, action not allowed
	Conflict          Code = "conflict"       // the state does not allow the action now
	PurposeDenied     Code = "purpose_denied" // the policy guard refused a use of personal data
	RateLimited       Code = "rate_limited"   // too many attempts
	TooLarge          Code = "too_large"      // the body or a field is too long
	Unsupported       Code = "unsupported"    // a media type or method the endpoint does not take
	ReauthNeeded      Code = "reauthentication_required"
	InsecureTransport Code = "insecure_transport"
	EmailUnverified   Code = "email_unverified" // the account's address was never confirmed
	// SecondFactorNeeded: the session must give (or enrol) a second factor
	// before it may do anything else.
	SecondFactorNeeded Code = "second_factor_required"
	Unavailable        Code = "unavailable" // a dependency (the database) does not answer; try again later
	Internal           Code = "internal"    // anything else; never carries a client message
)

// Error is a coded error. Message is shown to the client; Err is the cause,
// logged but never shown. Field names the offending input field, if any.
type Error struct {
	Code    Code
	Message string
	Field   string
	Err     error
}

func (e *Error) Error() string {
	msg := string(e.Code) + ": " + e.Message
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a coded error with a client-safe message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field returns an Invalid error naming the offending field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a code and a client-safe message to a cause.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the code of the first coded error in err's chain, or
// Internal when there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// MessageOf returns the client-safe message of err, or a generic one.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return e.Message
	}
	return "internal error"
}

// FieldOf returns the field an error names, if any.
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// JSONKind names a Go type the way a JSON client thinks of it ("a string",
// "a whole number"), for messages about a value of the wrong type.
func JSONKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return "of another type"
	}
}
