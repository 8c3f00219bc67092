import time

print("running", flush=True)
time.sleep(300)
