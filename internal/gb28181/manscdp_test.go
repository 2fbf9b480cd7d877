package gb28181

import (
	"errors"
	"strings"
	"testing"
)

func gbk(t testing.TB, s string) []byte {
	b, err := EncodeGBK(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const catalogDoc = `<?xml version="1.0" encoding="GB2312"?>
<Response><CmdType>Catalog</CmdType><SN>7</SN><DeviceID>34020000001320000001</DeviceID><SumNum>2</SumNum>
<DeviceList Num="2"><Item><DeviceID>34020000001310000001</DeviceID><Name>大门入口</Name><ParentID>34020000001320000001</ParentID><Status>ON</Status></Item>
<Item><DeviceID>34020000002150000001</DeviceID><Name>园区 &amp; 分组</Name><Parental>1</Parental><Status>OFF</Status></Item></DeviceList></Response>`

func TestParseCatalogGBK(t *testing.T) {
	m, err := Parse(gbk(t, catalogDoc))
	if err != nil {
		t.Fatal(err)
	}
	if m.Root != "Response" || m.CmdType != "Catalog" || m.SN != 7 || m.SumNum != 2 || len(m.Items) != 2 {
		t.Fatalf("%+v", m)
	}
	if it := m.Items[0]; it.Name != "大门入口" || !it.Online() || !it.Channel() || it.ParentID != "34020000001320000001" {
		t.Fatalf("item 0: %+v", it)
	}
	if it := m.Items[1]; it.Name != "园区 & 分组" || it.Online() || it.Channel() {
		t.Fatalf("item 1: %+v", it)
	}
	// The same document in UTF-8 under a GB2312 declaration reads the same.
	m2, err := Parse([]byte(catalogDoc))
	if err != nil || m2.Items[0].Name != "大门入口" {
		t.Fatalf("utf-8 under a GB2312 declaration: %+v, %v", m2, err)
	}
}

func TestParseRefusesBadDocuments(t *testing.T) {
	for name, body := range map[string]string{
		"empty":       "",
		"not xml":     "hello",
		"no cmdtype":  "<Notify><SN>1</SN></Notify>",
		"bad charset": `<?xml version="1.0" encoding="EBCDIC"?><Notify><CmdType>Keepalive</CmdType></Notify>`,
	} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	big := "<Notify><CmdType>Keepalive</CmdType>" + strings.Repeat("x", MaxBodyBytes) + "</Notify>"
	if _, err := Parse([]byte(big)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	many := "<Response><CmdType>Catalog</CmdType><DeviceList>" + strings.Repeat("<Item><DeviceID>1</DeviceID></Item>", MaxItems+1) + "</DeviceList></Response>"
	if _, err := Parse([]byte(many)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many items: %v", err)
	}
	m, err := Parse([]byte("<Notify><CmdType>Keepalive</CmdType><DeviceID>" + strings.Repeat("9", 400) + "</DeviceID><SN>99999999999</SN></Notify>"))
	if err != nil || len(m.DeviceID) != maxField || m.SN != 0 {
		t.Errorf("long fields: %+v %v", m, err)
	}
}

// FuzzParse: no document makes Parse panic, and what it returns is
// bounded and clean.
func FuzzParse(f *testing.F) {
	f.Add([]byte(catalogDoc))
	f.Add(gbk(f, catalogDoc))
	f.Add([]byte(`<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Keepalive</CmdType><SN>43</SN><DeviceID>34020000001320000001</DeviceID><Status>OK</Status></Notify>`))
	f.Add([]byte(`<Response><CmdType>DeviceInfo</CmdType><SN>2</SN><DeviceName>x</DeviceName><Channel>4</Channel><Result>OK</Result></Response>`))
	f.Add([]byte(`<?xml version="1.0" encoding="gbk"?><Response><CmdType>Catalog</CmdType><DeviceList><Item><DeviceID>&#0;</DeviceID></Item>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if m.CmdType == "" || len(m.Items) > MaxItems {
			t.Fatalf("accepted %+v", m)
		}
		for _, it := range m.Items {
			if it.DeviceID == "" || len(it.Name) > maxField || strings.ContainsRune(it.Name, '\uFFFD') {
				t.Fatalf("item %+v", it)
			}
		}
	})
}

// TestParseCatalogEvents: a catalog change notification's events are read
// (upper-cased) and decide the item's status and deletion.
func TestParseCatalogEvents(t *testing.T) {
	m, err := Parse(gbk(t, `<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Catalog</CmdType><SN>9</SN><DeviceID>34020000001320000001</DeviceID><SumNum>3</SumNum><DeviceList Num="3">
<Item><DeviceID>34020000001310000001</DeviceID><Status>ON</Status><Event>off</Event></Item>
<Item><DeviceID>34020000001310000002</DeviceID><Event>ON</Event></Item>
<Item><DeviceID>34020000001310000003</DeviceID><Event>DEL</Event></Item></DeviceList></Notify>`))
	if err != nil || m.Root != "Notify" || len(m.Items) != 3 {
		t.Fatalf("%+v %v", m, err)
	}
	if it := m.Items[0]; it.Event != EventOff || it.Online() || it.Deleted() {
		t.Fatalf("OFF: %+v", it)
	}
	if it := m.Items[1]; !it.Online() || it.Deleted() {
		t.Fatalf("ON: %+v", it)
	}
	if it := m.Items[2]; !it.Deleted() {
		t.Fatalf("DEL: %+v", it)
	}
}
