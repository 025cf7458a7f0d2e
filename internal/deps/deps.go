package deps

import (
	_ "github.com/ccojocar/zxcvbn-go"
	_ "github.com/chromedp/chromedp"
	_ "github.com/emersion/go-smtp"
	_ "github.com/getkin/kin-openapi/openapi3"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mileusna/useragent"
	_ "github.com/oschwald/maxminddb-golang/v2"
	_ "github.com/phuslu/iploc"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/wneessen/go-mail"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/time/rate"
	_ "modernc.org/sqlite"
)
