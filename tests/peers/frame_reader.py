# Reads frames from stdin the way the seed's client does (struct, json,
# hashlib) and prints one line per frame: "<lenth> <md5 ok|BAD> <extra keys>".
import hashlib
import json
import struct
import sys

stream = sys.stdin.buffer


def recv_exact(n):
    data = bytes()
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError('stream ended inside a frame')
        data += chunk
    return data


while True:
    head_info = stream.read(4)
    if not head_info:
        break
    head_len = struct.unpack('i', head_info)[0]
    head_dict = json.loads(recv_exact(head_len).decode('utf-8'))
    data_len = head_dict['lenth']
    body = recv_exact(data_len)
    ok = 'ok' if hashlib.md5(body).hexdigest() == head_dict['md5'] else 'BAD'
    extra = sorted(k for k in head_dict if k not in ('ver', 'md5', 'lenth'))
    print(data_len, ok, ','.join(extra), body[:16].hex())
