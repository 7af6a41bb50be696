# The seed's remote command client (模拟远程执行命令客户端), unchanged but for
# the address: python3 cmd_client.py [HOST:PORT] (or HOST PORT). Commands come from
# standard input at the >>> prompt; `exit` ends it.
import sys
from socket import *
import struct
import json

from peer_args import client_address
host, port = client_address(sys.argv)
t = socket(AF_INET, SOCK_STREAM)
t.connect((host, port))

while True:
    cmd = input('>>>').strip()
    if not cmd:
        continue
    elif cmd == 'exit':
        break
    else:
        t.send(cmd.encode('utf-8'))
        # 接收报头长度
        head_info = t.recv(4)
        head_len = struct.unpack('i', head_info)[0]
        # 接收报头
        head_bytes = t.recv(head_len)
        head_json = head_bytes.decode('utf-8')
        head_dict = json.loads(head_json)
        data_len = head_dict['lenth']
        print(head_dict)
        # 接收数据
        data_buffers = bytes()
        recv_size = 0
        while recv_size < data_len:
            recv_data = t.recv(1024)
            data_buffers+=recv_data
            recv_size+=len(recv_data)
        print(data_buffers.decode('utf-8'))
t.close()
