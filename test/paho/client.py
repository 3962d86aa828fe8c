#!/usr/bin/python3
"""Eclipse Paho (Python) interop client for test/gateway-paho.test.ts.

Connects to the gateway over mutual TLS with a device certificate, as MQTT 3.1.1 or 5.0, runs a plan of steps
(subscribe, publish, wait for a message, wait for the server to disconnect, sleep) and prints one JSON object per
line on stdout: one per event as it happens (so the test can act in between: "subscribed" means the SUBACK came
back), and a final {"event": "done", ...} with every message received and how the connection ended.

Usage: client.py '<plan JSON>'
  plan = {"port": 8883, "ca": "ca.pem", "cert": "cert.pem", "key": "key.pem", "clientId": "temp-1",
          "protocol": "v311" | "v5", "steps": [
            {"op": "subscribe", "topic": "t", "qos": 1},
            {"op": "publish", "topic": "t", "payload": "x", "qos": 1},
            {"op": "expect", "topic": "t", "timeout": 5},
            {"op": "waitDisconnect", "timeout": 5},
            {"op": "sleep", "seconds": 0.2}]}

Works with paho-mqtt 1.x (Debian's python3-paho-mqtt) and 2.x.
"""
import json
import ssl
import struct
import sys
import threading
import time

import paho.mqtt.client as mqtt

PAHO2 = hasattr(mqtt, "CallbackAPIVersion")
TIMEOUT = 10.0


def code(rc):
    """A reason code as an int: paho gives ints (3.1.1, 1.x) or ReasonCode(s) objects (5.0, 2.x)."""
    if rc is None:
        return None
    return int(rc.value) if hasattr(rc, "value") else int(rc)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class State:
    def __init__(self):
        self.cond = threading.Condition()
        self.connack = None
        self.subacks = {}
        self.pubacks = {}
        self.messages = []
        self.disconnect = None


if PAHO2:
    Base = mqtt.Client
else:
    class Base(mqtt.Client):
        """paho 1.x hands no PUBACK reason code to on_publish; read it from the packet it has just parsed."""

        puback_reasons = None

        def _handle_pubackcomp(self, cmd):
            pkt = self._in_packet["packet"]
            if self._protocol == mqtt.MQTTv5 and len(pkt) >= 2 and self.puback_reasons is not None:
                mid, = struct.unpack("!H", pkt[:2])
                # MQTT 5 §3.4.2.1: a PUBACK without a Reason Code means 0x00 Success.
                self.puback_reasons[mid] = pkt[2] if len(pkt) > 2 else 0
            return super()._handle_pubackcomp(cmd)


def make_client(plan, st):
    v5 = plan.get("protocol") == "v5"
    proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    if PAHO2:
        c = Base(mqtt.CallbackAPIVersion.VERSION2, client_id=plan["clientId"], protocol=proto)
    else:
        c = Base(client_id=plan["clientId"], protocol=proto)
        c.puback_reasons = {}

    def on_connect(client, userdata, flags, rc, properties=None):
        with st.cond:
            st.connack = code(rc)
            st.cond.notify_all()

    def on_subscribe(client, userdata, mid, granted, properties=None):
        with st.cond:
            st.subacks[mid] = [code(g) for g in granted]
            st.cond.notify_all()

    def on_publish(client, userdata, mid, rc=None, properties=None):
        with st.cond:
            if rc is None and not PAHO2:
                rc = client.puback_reasons.pop(mid, 0)
            st.pubacks[mid] = code(rc) if rc is not None else 0
            st.cond.notify_all()

    def on_message(client, userdata, msg):
        with st.cond:
            st.messages.append({"topic": msg.topic, "payload": msg.payload.decode("utf-8", "replace"), "qos": msg.qos})
            st.cond.notify_all()

    def on_disconnect(client, userdata, *args):
        # 2.x: (flags, reason_code, properties); 1.x: (rc) for 3.1.1, (rc, properties) for 5.0.
        rc = args[1] if PAHO2 else args[0]
        with st.cond:
            st.disconnect = {"reasonCode": code(rc), "at": time.time()}
            st.cond.notify_all()

    c.on_connect = on_connect
    c.on_subscribe = on_subscribe
    c.on_publish = on_publish
    c.on_message = on_message
    c.on_disconnect = on_disconnect
    return c


def wait(st, pred, timeout):
    end = time.monotonic() + timeout
    with st.cond:
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                return False
            st.cond.wait(left)
    return True


def run(plan):
    st = State()
    c = make_client(plan, st)
    c.tls_set(ca_certs=plan["ca"], certfile=plan["cert"], keyfile=plan["key"], cert_reqs=ssl.CERT_REQUIRED,
              tls_version=ssl.PROTOCOL_TLS_CLIENT)
    try:
        c.connect(plan.get("host", "127.0.0.1"), plan["port"], keepalive=30)
    except (OSError, ssl.SSLError) as err:
        emit({"event": "connect-error", "error": str(err)})
        emit({"event": "done", "messages": [], "disconnect": None, "serverClosed": True})
        return {"connack": None, "connectError": str(err)}
    c.loop_start()
    try:
        if not wait(st, lambda: st.connack is not None or st.disconnect is not None, TIMEOUT):
            emit({"event": "connack", "reasonCode": None, "timeout": True})
            return {"connack": None}
        emit({"event": "connack", "reasonCode": st.connack})
        if st.connack != 0:
            return {"connack": st.connack}
        for step in plan.get("steps", []):
            op = step["op"]
            if op == "subscribe":
                _, mid = c.subscribe(step["topic"], step.get("qos", 1))
                ok = wait(st, lambda: mid in st.subacks or st.disconnect is not None, step.get("timeout", TIMEOUT))
                emit({"event": "subscribed", "topic": step["topic"], "granted": st.subacks.get(mid), "timeout": not ok})
            elif op == "publish":
                info = c.publish(step["topic"], step.get("payload", ""), step.get("qos", 1))
                mid = info.mid
                if step.get("qos", 1) == 0:
                    emit({"event": "published", "topic": step["topic"], "mid": mid, "rc": info.rc})
                else:
                    ok = wait(st, lambda: mid in st.pubacks or st.disconnect is not None, step.get("timeout", TIMEOUT))
                    emit({"event": "published", "topic": step["topic"], "mid": mid, "pubackReasonCode": st.pubacks.get(mid),
                          "disconnected": st.disconnect is not None, "timeout": not ok})
            elif op == "expect":
                topic = step["topic"]
                ok = wait(st, lambda: any(m["topic"] == topic for m in st.messages), step.get("timeout", TIMEOUT))
                emit({"event": "expected", "topic": topic, "received": ok})
            elif op == "waitDisconnect":
                ok = wait(st, lambda: st.disconnect is not None, step.get("timeout", TIMEOUT))
                emit({"event": "server-disconnect", "received": ok, "reasonCode": (st.disconnect or {}).get("reasonCode")})
            elif op == "sleep":
                time.sleep(step.get("seconds", 0.1))
            else:
                raise ValueError("unknown step " + op)
            if st.disconnect is not None:
                break
        return {"connack": st.connack}
    finally:
        with st.cond:
            server_closed = st.disconnect is not None
        # Also after a server close: it stops paho's automatic reconnection.
        c.disconnect()
        if not server_closed and st.connack == 0:
            wait(st, lambda: st.disconnect is not None, 2.0)
        c.loop_stop()
        emit({"event": "done", "messages": st.messages, "disconnect": st.disconnect, "serverClosed": server_closed})


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
