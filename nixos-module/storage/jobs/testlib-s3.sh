# shellcheck shell=bash disable=SC2034,SC2154 # sets and reads the caller's variables
# Sourced by the backup tests (restic-test, drill-test): a local S3 endpoint
# from moto_server (PyPI, in the venv scripts/setup makes) that checks
# request signatures, behind a TCP relay a test can stop to cut the
# connection mid-upload. Bound to 127.0.0.1 only.
# Needs: $venv (with moto_server and boto3), $work (a scratch directory).
# s3_start BUCKET ENV_FILE: sets $mport (moto) and $port (relay: the
#   endpoint the tests use) unless already set, $moto and $proxy (PIDs); creates an IAM user whose key
#   (AWS_ACCESS_KEY_ID=…, AWS_SECRET_ACCESS_KEY=…) goes to ENV_FILE, and
#   BUCKET.
# start_relay / stop PID: (re)start the relay; stop a process we started.

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stop() { # stop PID: the process we started, if still there
  if [ -n "$1" ] && kill "$1" 2>/dev/null; then wait "$1" 2>/dev/null || true; fi
  return 0
}
start_relay() { "$venv/bin/python" "$work/relay.py" "$port" "$mport" & proxy=$!; sleep 0.5; }

s3_start() {
  local bucket=$1 env_file=$2
  mport=${mport:-$(free_port)}
  port=${port:-$(free_port)}
  INITIAL_NO_AUTH_ACTION_COUNT=3 "$venv/bin/moto_server" -H 127.0.0.1 -p "$mport" >"$work/moto.log" 2>&1 &
  moto=$!
  cat >"$work/relay.py" <<'PY'
import asyncio, sys
lport, rport = int(sys.argv[1]), int(sys.argv[2])
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data); await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", rport)
    except OSError:
        cw.close(); return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", lport)
    async with srv: await srv.serve_forever()
asyncio.run(main())
PY
  for _ in $(seq 50); do "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1',$mport))" 2>/dev/null && break; sleep 0.2; done
  # Three unauthenticated calls make an IAM user with a key; from then on
  # moto checks every signature (so wrong credentials are refused).
  "$venv/bin/python" - "$mport" "$env_file" "$bucket" <<'PY'
import boto3, json, sys
url = f"http://127.0.0.1:{sys.argv[1]}"
iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="backup")
iam.put_user_policy(UserName="backup", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="backup")["AccessKey"]
boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=k["AccessKeyId"],
             aws_secret_access_key=k["SecretAccessKey"]).create_bucket(Bucket=sys.argv[3])
with open(sys.argv[2], "w") as f:
    f.write(f"AWS_ACCESS_KEY_ID={k['AccessKeyId']}\nAWS_SECRET_ACCESS_KEY={k['SecretAccessKey']}\n")
PY
  chmod 600 "$env_file"
  start_relay
}
