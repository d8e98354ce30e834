package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The --config file holds Tally's own keys (the flags' names: http-addr, shard-id, ...)
// and, so that a WSO2 Streaming Integrator deployment.yaml works as it is, the WSO2 keys
// Tally shares with it:
//
//	wso2.carbon.id                  the node ID (id)
//	siddhi.properties.shardId       the shard ID (shard-id)
//	siddhi.properties.partitionById accepted (partitioning by ID is always on)
//	siddhi.properties.aggTimeZone   the aggregation time zone (agg-time-zone)
//	siddhi.extensions               the email sink's properties (the extension with
//	                                name: email, namespace: sink): host, port, username,
//	                                password, address and ssl.enable give the smtp-* keys
//	                                that the file or the flags leave unset
//
// wso2.carbon may be written as one key with a dot (as WSO2 does) or nested. Every other
// WSO2 section (wso2.datasources, siddhi.refs, listenerConfigurations, ...) is ignored and
// named in one info line when the node starts.

// decodeConfigFile reads a --config file's YAML into cfg and returns the WSO2 keys it
// ignored. Errors name the key and the line in plain words.
func decodeConfigFile(data []byte, cfg *serveConfig) (ignored []string, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty file
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the file must be a mapping of keys (such as id: n1), not %s", top.Line, kindName(top))
	}
	fields := tallyKeys(cfg)
	d := fileDecoder{cfg: cfg}
	err = d.mapping("", top, func(key string, k, v *yaml.Node) error {
		if ptr, ok := fields[key]; ok {
			return decodeValue(key, v, ptr)
		}
		switch key {
		case "wso2.carbon":
			return d.carbon("wso2.carbon", v)
		case "wso2":
			return d.mapping("wso2", v, func(sub string, _, sv *yaml.Node) error {
				if sub == "carbon" {
					return d.carbon("wso2.carbon", sv)
				}
				d.ignore("wso2." + sub)
				return nil
			})
		case "siddhi":
			return d.siddhi(v)
		case "store":
			return d.mapping("store", v, func(sub string, sk, sv *yaml.Node) error {
				if sub != "dsn" {
					return fmt.Errorf("line %d: unknown key store.%s (store has only dsn)", sk.Line, sub)
				}
				return decodeValue("store.dsn", sv, &cfg.Store.DSN)
			})
		}
		if looksWSO2(key) {
			d.ignore(key)
			return nil
		}
		msg := fmt.Sprintf("line %d: unknown key %q", k.Line, key)
		if alt := strings.ReplaceAll(key, "_", "-"); fields[alt] != nil {
			msg += fmt.Sprintf(" (did you mean %s?)", alt)
		}
		return errors.New(msg)
	})
	return d.ignored, err
}

// fileDecoder walks the file's mappings.
type fileDecoder struct {
	cfg     *serveConfig
	ignored []string
}

func (d *fileDecoder) ignore(key string) {
	if !slices.Contains(d.ignored, key) {
		d.ignored = append(d.ignored, key)
	}
}

// mapping calls fn for each key of the mapping n (named path), refusing a key given twice.
func (d *fileDecoder) mapping(path string, n *yaml.Node, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return nil
		}
		return fmt.Errorf("line %d: %s must be a mapping of keys, not %s", n.Line, path, kindName(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		full := key
		if path != "" {
			full = path + "." + key
		}
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: a key of %s is not a plain name", k.Line, orTop(path))
		}
		if first, dup := seen[key]; dup {
			return fmt.Errorf("line %d: %s is given twice (first on line %d)", k.Line, full, first)
		}
		seen[key] = k.Line
		if err := fn(key, k, v); err != nil {
			return err
		}
	}
	return nil
}

func orTop(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

// carbon reads wso2.carbon: id is the node ID; the rest is WSO2's own.
func (d *fileDecoder) carbon(path string, v *yaml.Node) error {
	return d.mapping(path, v, func(key string, _, sv *yaml.Node) error {
		if key == "id" {
			d.cfg.wso2Node = true
			return decodeValue(path+".id", sv, &d.cfg.ID)
		}
		d.ignore(path + "." + key)
		return nil
	})
}

// siddhi reads siddhi.properties (shardId, partitionById, aggTimeZone).
func (d *fileDecoder) siddhi(v *yaml.Node) error {
	return d.mapping("siddhi", v, func(key string, _, sv *yaml.Node) error {
		if key == "extensions" {
			return d.extensions(sv)
		}
		if key != "properties" {
			d.ignore("siddhi." + key)
			return nil
		}
		return d.mapping("siddhi.properties", sv, func(p string, _, pv *yaml.Node) error {
			full := "siddhi.properties." + p
			switch p {
			case "shardId":
				return decodeValue(full, pv, &d.cfg.Siddhi.Properties.ShardID)
			case "aggTimeZone":
				return decodeValue(full, pv, &d.cfg.Siddhi.Properties.AggTimeZone)
			case "partitionById":
				// Tally always partitions by ID: accepted, whatever it says.
				var on bool
				return decodeValue(full, pv, &on)
			}
			d.ignore(full)
			return nil
		})
	})
}

// extensions reads siddhi.extensions: a list of `- extension: {name, namespace,
// properties}`; the email sink's properties set the smtp-* keys not set otherwise.
func (d *fileDecoder) extensions(v *yaml.Node) error {
	var list []struct {
		Extension struct {
			Name       string            `yaml:"name"`
			Namespace  string            `yaml:"namespace"`
			Properties map[string]string `yaml:"properties"`
		} `yaml:"extension"`
	}
	if err := v.Decode(&list); err != nil {
		return fmt.Errorf("line %d: siddhi.extensions must be a list of extension: {name, namespace, properties}: %w", v.Line, err)
	}
	for _, e := range list {
		x := e.Extension
		if x.Name != "email" || x.Namespace != "sink" {
			d.ignore("siddhi.extensions." + x.Namespace + ":" + x.Name)
			continue
		}
		c := d.cfg
		for _, k := range slices.Sorted(maps.Keys(x.Properties)) {
			val := x.Properties[k]
			switch k {
			case "host":
				c.SMTPHost = cmp.Or(c.SMTPHost, val)
			case "port":
				p, err := strconv.Atoi(val)
				if err != nil {
					return fmt.Errorf("line %d: siddhi.extensions email sink port %q is not a number", v.Line, val)
				}
				c.SMTPPort = cmp.Or(c.SMTPPort, p)
			case "username":
				c.SMTPUsername = cmp.Or(c.SMTPUsername, val)
			case "password":
				c.wso2SMTPPassword = val
			case "address":
				c.SMTPFrom = cmp.Or(c.SMTPFrom, val)
			case "ssl.enable":
				if c.SMTPTLS == "" && val == "true" {
					c.SMTPTLS = "tls"
				}
			default:
				d.ignore("siddhi.extensions.email." + k)
			}
		}
	}
	return nil
}

// looksWSO2 reports whether an unknown top-level key is a WSO2 section rather than a
// misspelt Tally key: Tally's keys are lower-case words joined by dashes, WSO2's sections
// are dotted (wso2.datasources) or camelCase (listenerConfigurations).
func looksWSO2(key string) bool {
	return strings.Contains(key, ".") || strings.ToLower(key) != key
}

// tallyKeys maps each of Tally's own keys to the serveConfig field it sets.
func tallyKeys(cfg *serveConfig) map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(cfg).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || !f.IsExported() || tag == "siddhi" || tag == "store" {
			continue
		}
		out[tag] = v.Field(i).Addr().Interface()
	}
	return out
}

// decodeValue decodes v into ptr, saying in words what the key wants when it does not fit.
func decodeValue(key string, v *yaml.Node, ptr any) error {
	if err := v.Decode(ptr); err != nil {
		got := v.Value
		if v.Kind != yaml.ScalarNode {
			got = kindName(v)
		} else {
			got = fmt.Sprintf("%q", got)
		}
		return fmt.Errorf("line %d: %s must be %s, got %s", v.Line, key, wants(ptr), got)
	}
	return nil
}

// wants describes in words the values a field takes.
func wants(ptr any) string {
	switch ptr.(type) {
	case *string:
		return "a string"
	case *bool:
		return "true or false"
	case *int, *int64, *uint64:
		return "a whole number"
	case *time.Duration:
		return "a duration such as 500ms, 10s or 1h"
	case *[]string:
		return "a list of strings"
	}
	if reflect.TypeOf(ptr).Elem().Kind() == reflect.Map {
		return "a mapping of FROM: TO addresses"
	}
	return "a different kind of value"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%q", n.Value)
}

// logIgnored names, in one info line, the WSO2 sections of the --config file that Tally
// does not use.
func (c serveConfig) logIgnored(logger *slog.Logger) {
	if len(c.ignored) > 0 {
		logger.Info("config: ignoring WSO2 settings Tally does not use", "keys", strings.Join(c.ignored, ", "))
	}
}
