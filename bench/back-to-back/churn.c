// A target to attach to: keeps creating threads (each mallocs a little and exits) while another
// thread loops on malloc/free. Prints its pid, then every 100 ms: time (CLOCK_MONOTONIC, s),
// threads created, the longest pthread_create-to-thread-running latency (ms), malloc/free pairs.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <stdatomic.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static atomic_long pairs;
static void *looper(void*x){(void)x; for(;;){ for(int i=0;i<1000;i++){ void*v=malloc(32); __asm__ volatile(""::"r"(v)); free(v);} atomic_fetch_add(&pairs,1000);} }
static volatile double started;
static void *worker(void*x){ started=now(); free(malloc(64)); return x; }
int main(void){ setvbuf(stdout,0,_IOLBF,0); printf("%d\n",getpid());
  pthread_t l; pthread_create(&l,0,looper,0);
  double w0=now(), maxlat=0; long created=0, last=0;
  for(;;){ double t0=now(); started=0; pthread_t t; pthread_create(&t,0,worker,0); pthread_join(t,0);
    double lat=started-t0; if(lat>maxlat) maxlat=lat; created++;
    usleep(2000);
    double n=now(); if(n-w0>=0.1){ long p=atomic_load(&pairs); printf("%.3f %ld %.1f %ld\n",n,created,maxlat*1e3,p-last); last=p; created=0; maxlat=0; w0=n; } }
}
