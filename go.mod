module github.com/switchboard-chat/switchboard

go 1.26.8

require (
	github.com/google/uuid v1.6.0
	golang.org/x/text v0.29.0
)

require (
	go.etcd.io/bbolt v1.4.3 // indirect
	golang.org/x/sys v0.29.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
