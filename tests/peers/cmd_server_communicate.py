# The seed's remote command server with only its deadlock mended: it reads
# stdout and stderr together (communicate) instead of stderr to its end
# first, so large outputs work. For the benchmark's throughput comparison:
# python3 cmd_server_communicate.py [127.0.0.1:PORT] (or a bare PORT)
import sys
from socket import *
import threading
import subprocess
import struct
import hashlib
import json

from peer_args import server_address
address, _ = server_address(sys.argv, loopback_only=True)
s = socket(AF_INET, SOCK_STREAM)
s.bind(address)
s.listen(5)
print('端口正在监听。。。')
print('LISTENING %d' % s.getsockname()[1], flush=True)

def tcplink(sock, addr):
    while True:
        try:
            data = sock.recv(1024)
            print(data.decode('utf-8'))
            res = subprocess.Popen(data.decode('utf-8'), shell=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
            res_std, res_err = res.communicate()
            if res_err:
                cmd_out = res_err
            elif not res_std:
                cmd_out = 'ok'.encode('utf-8')
            else:
                cmd_out = res_std
            head = {
                'ver': '1',
                'md5': hashlib.md5(cmd_out).hexdigest(),
                'lenth': len(cmd_out)
            }
            head_json = json.dumps(head)
            head_bytes = head_json.encode('utf-8')
            print(head_bytes)
            # 发送报头长度
            sock.send(struct.pack('i', len(head_bytes)))
            # 发送发送报头
            sock.send(head_bytes)
            # 发送数据
            sock.send(cmd_out)
        except Exception:
            break
    sock.close()
    print('来自%s:%s的连接已关闭' % addr)

if __name__ == '__main__':
    while True:
        sock, addr = s.accept()
        print('已接受来自%s:%s的连接' % addr)
        t = threading.Thread(target=tcplink, args=(sock, addr))
        t.start()
