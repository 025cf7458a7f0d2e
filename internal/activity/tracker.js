/* Steward tracker: keeps nothing in the browser, talks to no other host. */
(function(w,d){var s=d.currentScript;if(!s)return;
var site=s.getAttribute("data-site"),api=new URL(s.src).origin+"/api/v1/collect",F="__FEATURES__",last,t0,on=0,spent=0;
function has(c){return F.indexOf(c)>=0}
function send(o){o.site=site;o.url=o.url||location.href;var b=JSON.stringify(o);
if(!(navigator.sendBeacon&&navigator.sendBeacon(api,new Blob([b],{type:"text/plain"}))))
fetch(api,{method:"POST",body:b,keepalive:true,credentials:"include",headers:{"Content-Type":"text/plain"}}).catch(function(){})}
function cls(){var x=screen.width;return x<600?"phone":x<1024?"tablet":x<1440?"laptop":x<2560?"desktop":"wide"}
function flush(){if(on){spent+=Date.now()-t0;on=0}
if(has("v")&&last&&spent>0)send({type:"engagement",url:last,duration_ms:spent});spent=0}
function view(){if(!has("p")||location.href===last)return;flush();
var o={type:"pageview"};if(has("r")&&!last&&d.referrer)o.referrer=d.referrer;if(has("s"))o.screen=cls();
last=location.href;t0=Date.now();on=!d.hidden;send(o)}
var push=history.pushState;history.pushState=function(){push.apply(this,arguments);view()};
w.addEventListener("popstate",view);
d.addEventListener("visibilitychange",function(){if(d.hidden)flush();else{t0=Date.now();on=1}});
d.addEventListener("click",function(e){var a=e.target.closest&&e.target.closest("a[href]");if(!a)return;
var u=new URL(a.href,location.href);if(!/^https?:$/.test(u.protocol))return;
if(u.host!==location.host){if(has("o"))send({type:"outbound",target:u.href})}
else if(has("d")&&(a.hasAttribute("download")||/\.(pdf|zip|docx?|xlsx?|pptx?|csv|epub|mp3|mp4|mov|gz)$/i.test(u.pathname)))send({type:"download",target:u.href})},true);
w.steward={event:function(n,p){if(has("e"))send({type:"event",name:n,props:p})},
search:function(t){if(has("q")&&t)send({type:"search",search:String(t)})}};
view()})(window,document);
