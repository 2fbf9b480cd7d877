import { useState } from "react";
import { call } from "../../api";
import { ErrorLine } from "../../components/ListTable";
import { describe } from "../../errors";
import { useLoad } from "../../useLoad";

/** GBStream is the last live stream of a GB/T 28181 channel (DescribeDeviceDiagnosis). */
export interface GBStream {
  Active: boolean;
  Transport: string;
  MediaIp: string;
  LocalPort: number;
  Remote: string;
  SdpSent: string;
  SdpReceived: string;
  SsrcExpected: string;
  SsrcSeen: string[];
  RtpPackets: number;
  RtpBytes: number;
  WrongSsrcPackets: number;
  MalformedPackets: number;
  LostPackets: number;
  Codec: string;
  InviteTime: string;
  FirstPacketTime: string;
  LastPacketTime: string;
  LastError: string;
  /** Receiver is the worker receiving the stream, when not the SIP server's process. */
  Receiver?: string;
}

/** GBDiagnosisResult is DescribeDeviceDiagnosis's answer. */
export interface GBDiagnosisResult {
  RegisteredAs: string;
  Registered: boolean;
  Online: boolean;
  SipTransport: string;
  RemoteAddr: string;
  LastRegisterTime: string;
  KeepaliveAgeMs: number;
  InCatalog: boolean;
  ChannelOn: boolean;
  Stream?: GBStream;
  Hints: string[];
}

function when(t: string): string {
  return t ? new Date(t).toLocaleString() : "never";
}

/** GBDiagnosis shows why a GB/T 28181 device has (no) video: registration, keepalives, the last stream's SDP, RTP and SSRC. */
export function GBDiagnosis(props: { id: string }) {
  const [d, setD] = useState<GBDiagnosisResult | null>(null);
  const [error, setError] = useState("");
  const [n, setN] = useState(0);
  useLoad(
    () => call<GBDiagnosisResult>("DescribeDeviceDiagnosis", { DeviceId: props.id }),
    (r) => {
      setD(r);
      setError("");
    },
    (e) => setError(describe(e)),
    [props.id, n],
  );
  const st = d?.Stream;
  return (
    <div className="card">
      <div className="page-head">
        <h2>Why no video</h2>
        <button type="button" className="secondary" onClick={() => setN((x) => x + 1)}>
          Refresh
        </button>
      </div>
      <ErrorLine error={error} />
      {d && (
        <>
          {d.Hints.length > 0 && (
            <ul className="probe probe-bad">
              {d.Hints.map((h) => (
                <li key={h}>{h}</li>
              ))}
            </ul>
          )}
          <dl className="facts">
            <dt>Registered as</dt>
            <dd>
              {d.RegisteredAs} {d.Registered ? `over ${d.SipTransport} from ${d.RemoteAddr}, last REGISTER ${when(d.LastRegisterTime)}` : "— not registered"}
            </dd>
            <dt>Keepalive</dt>
            <dd>{d.Registered ? `${Math.round(d.KeepaliveAgeMs / 1000)} s ago${d.Online ? "" : " (offline)"}` : "—"}</dd>
            <dt>Catalog</dt>
            <dd>{d.InCatalog ? (d.ChannelOn ? "channel on" : "channel off") : "not in the parent's catalog"}</dd>
            {st && (
              <>
                <dt>Stream</dt>
                <dd>
                  {st.Active ? "active" : "ended"}, {st.Transport} to {st.MediaIp}:{st.LocalPort}
                  {st.Remote && `, from ${st.Remote}`}
                  {st.Codec && `, ${st.Codec}`}
                  {st.Receiver && `, received by worker ${st.Receiver}`}
                </dd>
                <dt>RTP</dt>
                <dd>
                  {st.RtpPackets} packets, {st.RtpBytes} bytes; {st.WrongSsrcPackets} wrong SSRC, {st.MalformedPackets} malformed, {st.LostPackets} lost
                </dd>
                <dt>SSRC</dt>
                <dd>
                  expected {st.SsrcExpected}
                  {st.SsrcSeen.length > 0 && `, also seen ${st.SsrcSeen.join(", ")}`}
                </dd>
                <dt>Times</dt>
                <dd>
                  INVITE {when(st.InviteTime)}, first packet {when(st.FirstPacketTime)}, last {when(st.LastPacketTime)}
                </dd>
                {st.LastError && (
                  <>
                    <dt>Last error</dt>
                    <dd>{st.LastError}</dd>
                  </>
                )}
              </>
            )}
          </dl>
          {st && (
            <details>
              <summary>SDP sent and received</summary>
              <pre className="small">{st.SdpSent}</pre>
              <pre className="small">{st.SdpReceived}</pre>
            </details>
          )}
        </>
      )}
    </div>
  );
}
