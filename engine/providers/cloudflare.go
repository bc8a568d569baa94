package main

// Cloudflare's API is a cloud's: like the SDK's mocks, this stand-in answers for it without
// reaching anything. DNS records are kept in the JSON file CUTOVER_FAKE_CLOUDFLARE names
// (id -> record), so a test can read where the names point.

import (
	"context"
	"encoding/json"
	"os"
	"sync"
)

var cloudflareFile sync.Mutex

func saveRecord(id string, record props) error {
	path := os.Getenv("CUTOVER_FAKE_CLOUDFLARE")
	if path == "" {
		return nil
	}
	cloudflareFile.Lock()
	defer cloudflareFile.Unlock()
	records := map[string]props{}
	if raw, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(raw, &records)
	}
	if record == nil {
		delete(records, id)
	} else {
		records[id] = record
	}
	raw, err := json.MarshalIndent(records, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}

func cloudflareTypes() map[string]resourceType {
	return map[string]resourceType{
		"cloudflare:index/dnsRecord:DnsRecord": {
			replaceOnChange: []string{"zoneId"},
			previewOutputs:  []string{"createdOn", "modifiedOn", "proxiable"},
			create: func(_ context.Context, c call, in props) (string, props, error) {
				id := uniqueID(c.urn)
				out := copyProps(in)
				out["proxiable"], out["createdOn"], out["modifiedOn"] = true, "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"
				return id, out, saveRecord(id, in)
			},
			update: func(_ context.Context, _ call, id string, olds, news props) (props, error) {
				out := copyProps(news)
				out["proxiable"], out["createdOn"], out["modifiedOn"] = true, olds["createdOn"], "2026-12-01T00:00:00Z"
				return out, saveRecord(id, news)
			},
			delete: func(_ context.Context, _ call, id string, _ props) error {
				return saveRecord(id, nil)
			},
		},
	}
}
