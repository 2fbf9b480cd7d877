// Package gb28181 is the SIP side of GB/T 28181: a server that cameras and
// NVRs register to (REGISTER with MD5 digest, keepalive MESSAGEs, device
// info and catalog queries over UDP and TCP, through emiago/sipgo), the
// MANSCDP XML those messages carry, and a simulated device for tests and
// people. The device center decides which devices exist and what their
// passwords are (Directory); this package only speaks the protocol.
package gb28181

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// Limits on what a device may send in one MANSCDP document.
const (
	// MaxBodyBytes bounds a MESSAGE body; larger ones are refused unparsed.
	MaxBodyBytes = 64 << 10
	// MaxItems bounds the catalog items one document may carry.
	MaxItems = 1000
	// maxField bounds every text field kept from a document.
	maxField = 256
)

// ErrTooLarge is returned for a document over MaxBodyBytes or MaxItems.
var ErrTooLarge = errors.New("gb28181: document too large")

// Message is one MANSCDP document: a Notify (keepalive, catalog change),
// a Response (to our Query) or a Query. Only the fields this package uses
// are kept; text is UTF-8 whatever the document's encoding was.
type Message struct {
	// Root is the document's root element: Notify, Response, Query, Control.
	Root     string
	CmdType  string
	SN       int
	DeviceID string
	// Status is the keepalive's status (OK) or a device status response's.
	Status string
	// Result is OK or ERROR in responses.
	Result string
	// DeviceInfo fields.
	DeviceName, Manufacturer, Model, Firmware string
	Channel                                   int
	// SumNum is how many catalog items the device has in all; Items are
	// those of this document (a catalog comes in several).
	SumNum int
	Items  []CatalogItem
	// PTZCmd is a DeviceControl's 8-byte command, in hex.
	PTZCmd string
}

// CatalogItem is one entry of a catalog: a channel (camera), or a
// directory/organisation node, with its parent.
type CatalogItem struct {
	DeviceID     string `xml:"DeviceID"`
	Name         string `xml:"Name"`
	Manufacturer string `xml:"Manufacturer"`
	Model        string `xml:"Model"`
	CivilCode    string `xml:"CivilCode"`
	Address      string `xml:"Address"`
	// Parental is 1 when the item has children of its own.
	Parental int    `xml:"Parental"`
	ParentID string `xml:"ParentID"`
	// Status is ON or OFF (some devices send ONLINE/OFFLINE).
	Status    string `xml:"Status"`
	IPAddress string `xml:"IPAddress"`
	Port      int    `xml:"Port"`
	// Event is set in catalog change notifications: ADD, DEL, UPDATE, ON,
	// OFF (also VLOST, DEFECT); "" in answers to a catalog query.
	Event string `xml:"Event"`
}

// Catalog change events (CatalogItem.Event), upper-cased.
const (
	EventAdd    = "ADD"
	EventDel    = "DEL"
	EventUpdate = "UPDATE"
	EventOn     = "ON"
	EventOff    = "OFF"
)

// Online reports whether the item is on: an ON or OFF event says so,
// else its status does.
func (it CatalogItem) Online() bool {
	switch it.Event {
	case EventOn:
		return true
	case EventOff, "VLOST", "DEFECT":
		return false
	}
	s := strings.ToUpper(strings.TrimSpace(it.Status))
	return s == "ON" || s == "ONLINE" || s == "OK"
}

// Deleted reports whether the item is a notification that the channel
// left the catalog.
func (it CatalogItem) Deleted() bool { return it.Event == EventDel || it.Event == "DELETE" }

// Channel reports whether the item is a video channel (a camera or
// encoder channel by its GB/T 28181 type code: 131, 132) rather than a
// directory, business group or the device itself.
func (it CatalogItem) Channel() bool {
	if len(it.DeviceID) != 20 {
		return it.Parental == 0 // not a standard code: trust Parental
	}
	t := it.DeviceID[10:13]
	return t == "131" || t == "132"
}

type wireMessage struct {
	XMLName      xml.Name
	CmdType      string `xml:"CmdType"`
	SN           string `xml:"SN"`
	DeviceID     string `xml:"DeviceID"`
	Status       string `xml:"Status"`
	Result       string `xml:"Result"`
	DeviceName   string `xml:"DeviceName"`
	Manufacturer string `xml:"Manufacturer"`
	Model        string `xml:"Model"`
	Firmware     string `xml:"Firmware"`
	Channel      string `xml:"Channel"`
	SumNum       string `xml:"SumNum"`
	PTZCmd       string `xml:"PTZCmd"`
	DeviceList   struct {
		Items []CatalogItem `xml:"Item"`
	} `xml:"DeviceList"`
}

// Parse reads a MANSCDP document. GB2312, GBK and GB18030 text is decoded
// to UTF-8 (a document that says GB2312 but is valid UTF-8 with non-ASCII
// text is read as UTF-8: some devices declare one and send the other).
// Errors name what is wrong; nothing in body can make Parse panic.
func Parse(body []byte) (*Message, error) {
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), MaxBodyBytes)
	}
	if n := bytes.Count(body, []byte("<Item")); n > MaxItems {
		return nil, fmt.Errorf("%w: %d items, limit %d", ErrTooLarge, n, MaxItems)
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = false // devices write sloppy XML (bare &, odd entities)
	utf8Body := utf8.Valid(body)
	dec.CharsetReader = func(charset string, in io.Reader) (io.Reader, error) {
		switch strings.ToLower(strings.TrimSpace(charset)) {
		case "gb2312", "gbk", "gb18030", "x-gbk", "cp936":
			if utf8Body {
				return in, nil
			}
			return transform.NewReader(in, simplifiedchinese.GB18030.NewDecoder()), nil
		case "utf-8", "utf8", "us-ascii", "ascii", "":
			return in, nil
		}
		return nil, fmt.Errorf("encoding %q not supported", charset)
	}
	var w wireMessage
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("gb28181: MANSCDP document: %w", err)
	}
	m := &Message{Root: w.XMLName.Local, CmdType: clean(w.CmdType), DeviceID: clean(w.DeviceID), Status: clean(w.Status),
		Result: clean(w.Result), DeviceName: clean(w.DeviceName), Manufacturer: clean(w.Manufacturer), Model: clean(w.Model),
		Firmware: clean(w.Firmware), PTZCmd: clean(w.PTZCmd)}
	if m.Root == "" || m.CmdType == "" {
		return nil, errors.New("gb28181: MANSCDP document: no CmdType")
	}
	m.SN = atoi(w.SN)
	m.Channel = atoi(w.Channel)
	m.SumNum = atoi(w.SumNum)
	if len(w.DeviceList.Items) > MaxItems {
		return nil, fmt.Errorf("%w: %d items, limit %d", ErrTooLarge, len(w.DeviceList.Items), MaxItems)
	}
	for _, it := range w.DeviceList.Items {
		it.DeviceID, it.Name, it.Manufacturer, it.Model = clean(it.DeviceID), clean(it.Name), clean(it.Manufacturer), clean(it.Model)
		it.CivilCode, it.Address, it.ParentID, it.Status, it.IPAddress = clean(it.CivilCode), clean(it.Address), clean(it.ParentID), clean(it.Status), clean(it.IPAddress)
		it.Event = strings.ToUpper(clean(it.Event))
		if it.DeviceID == "" {
			continue
		}
		m.Items = append(m.Items, it)
	}
	return m, nil
}

// clean trims s, drops control characters and invalid UTF-8, and cuts it
// to maxField bytes on a character boundary.
func clean(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	for len(s) > maxField {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// atoi reads a small non-negative decimal, 0 for anything else.
func atoi(s string) int {
	s = strings.TrimSpace(s)
	n := 0
	for i, c := range s {
		if c < '0' || c > '9' || i >= 9 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// ValidID reports whether id looks like a GB/T 28181 code: 20 digits.
func ValidID(id string) bool {
	if len(id) != 20 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// Query returns a MANSCDP query document (CmdType Catalog, DeviceInfo,
// DeviceStatus) for deviceID, in GB2312 as devices expect.
func Query(cmdType string, sn int, deviceID string) []byte {
	return []byte(fmt.Sprintf("<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Query>\r\n<CmdType>%s</CmdType>\r\n<SN>%d</SN>\r\n<DeviceID>%s</DeviceID>\r\n</Query>\r\n",
		xmlText(cmdType), sn, xmlText(deviceID)))
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// EncodeGBK returns s in GB18030 (GBK for the characters GBK has), for
// documents a device sends.
func EncodeGBK(s string) ([]byte, error) {
	b, _, err := transform.Bytes(simplifiedchinese.GB18030.NewEncoder(), []byte(s))
	return b, err
}
